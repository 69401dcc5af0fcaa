"""The Anthropic Messages API's shapes: request validation, Message objects, stream events, errors."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.llm.sandbox.text import Reply, compose_reply, estimate_tokens, message_text, request_input_tokens

if TYPE_CHECKING:
    from core.llm.sandbox.cache import CacheUse

__all__ = [
    "ERROR_TYPES",
    "Answer",
    "RequestError",
    "answer_request",
    "error_body",
    "message_object",
    "new_id",
    "usage_object",
    "validate_request",
]

# error.type per HTTP status, as the real API names them
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    402: "Your credit balance is too low to access the Anthropic API.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    408: "Request timed out.",
    409: "Conflict.",
    413: "Request exceeds the maximum allowed number of bytes.",
    422: "Unprocessable request.",
    429: "Number of requests has exceeded your rate limit. Please try again later.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
    504: "Request timed out.",
    529: "Overloaded",
}

MAX_OUTPUT_TOKENS = 128_000
_ROLES = ("user", "assistant")


def new_id(prefix: str) -> str:
    return f"{prefix}_01{secrets.token_hex(12)}"


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str | None, request_id: str | None,
               error_code: str | None = None) -> dict[str, Any]:
    """{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}"""
    error: dict[str, Any] = {"type": error_type_for(status), "message": message or DEFAULT_MESSAGES.get(status, "Error")}
    if error_code:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": request_id}


class RequestError(Exception):
    """A request the API would refuse: status and message for the error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def validate_request(body: Any) -> None:
    """Raise RequestError as the Messages API would for a malformed request."""
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RequestError(400, "model: Field required")
    if not model.startswith("claude"):
        raise RequestError(404, f"model: {model}")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise RequestError(400, "max_tokens: Field required" if max_tokens is None else "max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise RequestError(400, "max_tokens: Input should be greater than or equal to 1")
    if max_tokens > MAX_OUTPUT_TOKENS:
        raise RequestError(400, f"max_tokens: {max_tokens} > {MAX_OUTPUT_TOKENS}, which is the maximum allowed "
                                f"number of output tokens for {model}")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RequestError(400, "messages: Field required")
    if not messages:
        raise RequestError(400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(400, f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in _ROLES:
            raise RequestError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise RequestError(400, f"messages.{i}.content: Field required")
        last = i == len(messages) - 1
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise RequestError(400, f"messages.{i}.content.{j}: Input should be a valid content block")
                if block["type"] == "text" and not isinstance(block.get("text"), str):
                    raise RequestError(400, f"messages.{i}.content.{j}.text: Field required")
        text = message_text(content)
        if not last and not (text or (isinstance(content, list) and content)):
            raise RequestError(400, f"messages.{i}: all messages must have non-empty content except for the "
                                    "optional final assistant message")
        if last and message["role"] == "assistant" and text != text.rstrip():
            raise RequestError(400, "messages: final assistant content cannot end with trailing whitespace")
        if last and message["role"] == "user" and not text and not content:
            raise RequestError(400, f"messages.{i}: user messages must have non-empty content")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestError(400, "system: Input should be a valid string")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)):
        raise RequestError(400, "stop_sequences: Input should be a list of non-empty strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise RequestError(400, "stream: Input should be a valid boolean")


@dataclass(frozen=True)
class Answer:
    """The reply to one request, already cut to max_tokens / stop sequences."""

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    stop_sequence: str | None
    reply: Reply


def answer_request(body: dict[str, Any], seed: int) -> Answer:
    """Compose the reply to a validated request and apply its max_tokens and stop_sequences."""
    messages = body["messages"]
    reply = compose_reply(seed, body.get("system"), messages)
    return finish_answer(reply.text, body, reply)


def finish_answer(text: str, body: dict[str, Any], reply: Reply) -> Answer:
    """`text` as the answer to `body`: stopped at a stop sequence, cut at max_tokens, with usage."""
    input_tokens = request_input_tokens(body.get("system"), body["messages"])
    stop_reason, stop_sequence = "end_turn", None
    hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s in text]
    if hits:
        at, stop_sequence = min(hits)
        text, stop_reason = text[:at], "stop_sequence"
    max_tokens = int(body["max_tokens"])
    if estimate_tokens(text) > max_tokens:
        text, stop_reason, stop_sequence = _cut(text, max_tokens), "max_tokens", None
    # even an empty reply costs a token, as with the real API
    return Answer(text, input_tokens, max(1, estimate_tokens(text)), stop_reason, stop_sequence, reply)


def _cut(text: str, max_tokens: int) -> str:
    """The longest prefix of whole words within `max_tokens`."""
    limit = max_tokens * 4
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return cut[:space] if space > limit // 2 else cut


def message_object(answer: Answer, model: str, message_id: str, cache: CacheUse | None = None,
                   service_tier: str = "standard") -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": answer.text}],
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": usage_object(answer.input_tokens, answer.output_tokens, cache, service_tier),
    }


def usage_object(input_tokens: int, output_tokens: int, cache: CacheUse | None = None,
                 service_tier: str = "standard") -> dict[str, Any]:
    """The API's usage: `input_tokens` is what the cache neither read nor wrote of the request's input."""
    read, five, hour = (cache.read, cache.created_5m, cache.created_1h) if cache is not None else (0, 0, 0)
    return {
        "input_tokens": max(0, input_tokens - read - five - hour),
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": five + hour,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour},
        "service_tier": service_tier,
    }


_WORDS = re.compile(r"\s*\S+")
WORDS_PER_DELTA = 3


def text_pieces(text: str, words_per_delta: int = WORDS_PER_DELTA) -> list[str]:
    """`text` in deltas of a few words each; joined they give `text` back exactly."""
    words = _WORDS.findall(text)
    pieces = ["".join(words[i:i + words_per_delta]) for i in range(0, len(words), words_per_delta)]
    tail = text[len("".join(pieces)):]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def stream_head(answer: Answer, model: str, message_id: str, cache: CacheUse | None = None) -> list[bytes]:
    """message_start, content_block_start and a ping: what comes before the first delta."""
    start = message_object(answer, model, message_id, cache)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = usage_object(answer.input_tokens, 1, cache)
    return [
        sse("message_start", {"type": "message_start", "message": start}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
    ]


def stream_delta(piece: str) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": piece}})


def stream_tail(answer: Answer) -> list[bytes]:
    """content_block_stop, message_delta (stop reason, output tokens) and message_stop."""
    return [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta",
                              "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
                              "usage": {"output_tokens": answer.output_tokens}}),
        sse("message_stop", {"type": "message_stop"}),
    ]
