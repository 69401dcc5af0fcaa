"""Generate one conversation: prompt -> model call (with retries) -> parse -> Conversation.

A reply that is not a valid conversation (GenerationError, code "invalid_response") is
recorded and asked for again with a fresh call, up to settings.generation_invalid_retries
more times; then the last GenerationError is raised. A prefill (a resumed draft) is used
for the first call only: if the prefilled reply turns out malformed, the retries start clean.
Before such a fresh call `on_restart()` (if given) is called, so a streaming view can clear
the text it has shown: the deltas that follow belong to a new reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.config import get_settings
from core.errorlog import record
from core.errors import ErrorCode, GenerationError
from core.generation.models import Conversation, GenerationParams, GenerationResult
from core.generation.parse import parse_conversation
from core.generation.request import ItemRequest, aitem_request
from core.llm.pricing import price
from core.llm.types import LLMResult, Usage
from core.redact import redact_text

if TYPE_CHECKING:
    from core.llm.client import ClaudeClient
    from core.templates.model import Template

__all__ = ["agenerate_conversation", "estimate_output_tokens", "parse_reply"]


def estimate_output_tokens(turns: int) -> int:
    """Expected output tokens of a conversation of `turns` messages (for the rate limiter)."""
    return turns * get_settings().estimate_output_tokens_per_turn


class _Attempts:
    """The bookkeeping of one conversation's calls: the prompt, the invalid replies so far, the usage."""

    def __init__(self, params: GenerationParams, component: str, operation_id: str | None,
                 request: ItemRequest) -> None:
        self.params = params
        self.component = component
        self.operation_id = operation_id
        self.request = request
        self.max_invalid = get_settings().generation_invalid_retries
        self.invalid = 0
        self.usage: Usage = Usage()
        self.last_error: GenerationError | None = None

    def accept(self, llm: LLMResult, prefill: str) -> GenerationResult | None:
        """The result if `llm`'s reply parses; else record why and return None (try again)."""
        self.usage = self.usage + llm.usage
        text = prefill + llm.text
        try:
            turns = parse_conversation(text, self.params.turns)
        except GenerationError as err:
            self.invalid += 1
            err.request_id = llm.request_id
            err.context.update({"model": llm.model, "invalid_attempt": self.invalid, "template": self.params.template,
                                "turns": self.params.turns})
            record(err, component=self.component, attempt=self.invalid, request_id=llm.request_id,
                    operation_id=self.operation_id)
            self.last_error = err
            return None
        return GenerationResult(
            conversation=Conversation(system_prompt=redact_text(self.request.system_prompt), turns=turns), llm=llm,
            params=self.params, raw_text=text, usage=self.usage,
            cost_usd=price(llm.model, self.usage, mode=self.request.mode, ttl=self.request.cache_ttl).total,
            invalid_attempts=self.invalid, mode=self.request.mode)

    def exhausted(self) -> bool:
        return self.invalid > self.max_invalid

    def final_error(self) -> GenerationError:
        """A new error for the caller (the recorded ones stay as they were queued)."""
        last = self.last_error
        return GenerationError(
            last.message if last else "No usable conversation was generated.", code=ErrorCode.INVALID_RESPONSE,
            recoverable=False,  # retried here already; callers should not loop again
            user_message=(f"The model's reply was not a usable conversation {self.invalid} times in a row. "
                          "Try again, or change the template or the number of turns."),
            request_id=last.request_id if last else None, context=dict(last.context) if last else None,
            cause=last)


def parse_reply(params: GenerationParams, request: ItemRequest, llm: LLMResult, *, component: str = "batch",
                operation_id: str | None = None) -> GenerationResult:
    """The conversation in a reply that came another way than `agenerate_conversation` (a Message Batches result).

    Priced at `request`'s mode. A reply that is not a usable conversation is recorded and raised
    (GenerationError, recoverable: asking again may give a good one); the caller decides whether to.
    """
    run = _Attempts(params, component, operation_id, request)
    result = run.accept(llm, "")
    if result is not None:
        return result
    assert run.last_error is not None
    run.last_error.is_recoverable = True
    raise run.last_error


async def agenerate_conversation(
    params: GenerationParams,
    *,
    client: ClaudeClient | None = None,
    on_delta: Callable[[str], None] | None = None,
    prefill: str = "",
    component: str = "generation",
    operation_id: str | None = None,
    on_restart: Callable[[], None] | None = None,
    template: Template | None = None,
) -> GenerationResult:
    """One conversation for `params` (validated first: ValidationError(field=...) on bad input).

    `template`: an unsaved template to generate from (the editor's "Try it"), instead of the stored one.

    Sync code runs it with `core.llm.loops.run_sync(agenerate_conversation(...))`.
    """
    from core.llm.client import get_client

    llm_client = client or get_client()
    request = await aitem_request(params, client=llm_client, template=template, component=component)
    run = _Attempts(params, component, operation_id, request)
    first_prefill = prefill
    while True:
        llm = await llm_client.acomplete(
            system=request.system, messages=request.messages(), model=request.model, max_tokens=request.max_tokens,
            component=component,
            operation_id=operation_id, on_delta=on_delta, prefill=first_prefill,
            est_output_tokens=estimate_output_tokens(params.turns))
        result = run.accept(llm, first_prefill)
        if result is not None:
            return result
        if run.exhausted():
            raise run.final_error()
        first_prefill = ""
        if on_restart is not None:
            on_restart()
