"""The Claude client: the one place that calls the anthropic SDK (its client per loop: core.llm.loops).

Where calls go (decided once per client, see `get_client`):

- ``ANTHROPIC_BASE_URL`` set -> that endpoint (provider "endpoint"), with the API key or a
  placeholder, so the app can be pointed at any compatible server, e.g. a sandbox started
  on its own;
- else ``ANTHROPIC_API_KEY`` set -> real Claude (provider "claude");
- else the offline sandbox, started in this process on a free loopback port (provider "sandbox").

Every call is a coroutine (`ClaudeClient.acomplete`); sync code runs it with
`core.llm.loops.run_sync` (see core.llm.loops for the event loops and the SDK client of each).
For each attempt: rate limiter -> circuit breaker -> one SDK request, inside one
tenacity retry policy (the SDK's own retries are off, ``max_retries=0``). The limiter and the
breaker are consulted per attempt, not once per call, because every retry is a request the
server counts and a breaker that opens mid-retry must stop the remaining attempts.

Each failed attempt is classified where it enters (``core.errors.classify``), fed to the
breaker and the limiter (429 -> ``observe_rate_limited``), and written to the error log with
its attempt number, request id, component and operation id. When a call succeeds after
failed attempts, the last failure is recorded once more as an info row with
``recovered=True`` (the earlier rows were already queued and cannot be amended), so the log
shows both the failures and that they were recovered.

Streaming (``on_delta`` given): text deltas go to ``on_delta`` as they arrive. A stream cut
mid-message raises a classified, recoverable error whose ``partial_text`` holds everything
received; when the policy retries it, the next attempt continues from that text by prefill
(assistant message = prefill + partial) instead of starting over, and ``on_delta`` only sees
the new text. The returned ``LLMResult.text`` is always the continuation after the caller's
``prefill``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from core.config import Settings, get_settings
from core.errorlog import record
from core.errors import (
    APIError,
    AppError,
    ErrorCode,
    NetworkError,
    Severity,
    ValidationError,
    classify,
    gave_up,
)
from core.llm import chaos
from core.llm.loops import sdk_for_running_loop
from core.llm.pricing import priced_cost
from core.llm.sandbox import SandboxConfig, SandboxServer
from core.llm.types import LLMResult, Usage
from core.resilience import async_retry_policy, get_breaker, get_rate_limiter, is_retryable

__all__ = ["ClaudeClient", "LLMResult", "Usage", "get_client", "reset_client"]

# a placeholder key for endpoints that need none (the SDK refuses to start without one)
_PLACEHOLDER_KEY = "sk-ant-placeholder-not-a-real-key"

# mid-stream `error` events arrive on a 200 response; the SDK raises them as APIStatusError
# with status 200, so map the event's error type to what the same error would be as a status
_STREAM_ERROR_TYPES: dict[str, tuple[ErrorCode, bool, str]] = {
    "overloaded_error": (ErrorCode.OVERLOADED, True, "The model service is overloaded. It will be retried."),
    "api_error": (ErrorCode.SERVER_ERROR, True, "The model service had an internal error. It will be retried."),
    "rate_limit_error": (ErrorCode.RATE_LIMITED, True,
                         "The rate limit was reached. The request will be retried after a wait."),
    "timeout_error": (ErrorCode.REQUEST_TIMEOUT, True, "The model service timed out. It will be retried."),
}


@dataclass
class _CallState:
    """What one acomplete() call carries from attempt to attempt."""

    system: str | list[dict[str, Any]]
    messages: list[dict[str, Any]]
    model: str
    max_tokens: int
    component: str
    operation_id: str | None
    on_delta: Callable[[str], None] | None
    prefill: str
    est_input: int
    est_output: int
    partial: str = ""  # text received so far after the caller's prefill (streams only)
    usage: Usage = field(default_factory=Usage)
    failures: list[AppError] = field(default_factory=list)
    attempt: int = 0


@dataclass
class _StreamProgress:
    """What one streamed attempt has received: text deltas, and the message its events describe.

    Fed the stream's events as plain JSON (see `_stream_events`) rather than the SDK's event
    models: building those models and the SDK's message snapshot cost ~10 ms of CPU per
    conversation of ~80 deltas, more than everything else a batch item does together.
    """

    received: list[str] = field(default_factory=list)
    started: Usage | None = None  # the usage message_start announced
    model: str = ""
    stop_reason: str | None = None  # set by message_delta; None at the end means the stream was cut
    usage: dict[str, Any] = field(default_factory=dict)  # message_start's usage, updated by message_delta

    def take(self, event: Mapping[str, Any], on_delta: Callable[[str], None] | None) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                self.received.append(delta["text"])
                if on_delta is not None:
                    on_delta(delta["text"])
        elif kind == "message_start":
            message = event.get("message") or {}
            self.model = str(message.get("model") or "")
            self.usage = dict(message.get("usage") or {})
            self.started = Usage.from_api(self.usage)
        elif kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason")
            # as the SDK accumulates it: the counts message_delta carries replace message_start's
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})


@dataclass
class _AttemptOutcome:
    text: str
    usage: Usage
    request_id: str | None
    model: str
    stop_reason: str | None


def _estimate_tokens(text: str, settings: Settings) -> int:
    return settings.estimated_tokens(text)


def _classify_attempt_error(exc: BaseException) -> AppError:
    """classify(), plus the mid-stream error events the SDK reports with status 200."""
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
        body = exc.body if isinstance(exc.body, Mapping) else {}
        error = body.get("error") if isinstance(body.get("error"), Mapping) else body
        kind = str(error.get("type", "")) if isinstance(error, Mapping) else ""
        code, recoverable, user_message = _STREAM_ERROR_TYPES.get(
            kind, (ErrorCode.STREAM_ERROR, True, "The model service broke off its answer. It will be retried."))
        message = str(error.get("message", "")) if isinstance(error, Mapping) else ""
        return APIError(
            f"Error event mid-stream ({kind or 'unknown'}): {message or exc}", code=code,
            recoverable=recoverable, user_message=user_message, request_id=getattr(exc, "request_id", None),
            cause=exc)
    return classify(exc)


class ClaudeClient:
    """Calls the model through limiter -> breaker -> retry -> SDK. Build it with `get_client()`."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str | None,
        api_key: str,
        sandbox: Any = None,
        settings: Settings | None = None,
        limiter_name: str = "claude",
        breaker_name: str = "claude",
    ) -> None:
        s = settings or get_settings()
        self.provider = provider
        self.base_url = base_url
        self.sandbox = sandbox
        self._api_key = api_key
        self._timeout = s.request_timeout_s
        self._limiter_name = limiter_name
        self._breaker_name = breaker_name

    def __repr__(self) -> str:
        return f"ClaudeClient(provider={self.provider!r}, base_url={self.base_url!r})"

    def async_sdk(self) -> anthropic.AsyncAnthropic:
        """The SDK client for the running event loop (see core.llm.loops: one per loop)."""
        return sdk_for_running_loop(self._api_key, self.base_url, self._timeout)

    def close(self) -> None:
        """Stop the in-process sandbox, if any (each loop's SDK client is closed with its loop)."""
        if self.sandbox is not None:
            self.sandbox.stop()

    # ---- the call ------------------------------------------------------------------------
    async def acomplete(
        self,
        *,
        system: str | Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        model: str | None = None,
        max_tokens: int | None = None,
        component: str,
        operation_id: str | None = None,
        on_delta: Callable[[str], None] | None = None,
        prefill: str = "",
        est_output_tokens: int | None = None,
    ) -> LLMResult:
        """One model call with retries; streams to `on_delta` when given. Raises a classified AppError.

        `system` is the text, or the API's text blocks (one with a `cache_control` breakpoint:
        core.generation.request builds it).

        The only way to the model; sync code runs it with `core.llm.loops.run_sync`.
        """
        state = self._new_state(system, messages, model, max_tokens, component, operation_id, on_delta,
                                prefill, est_output_tokens)
        limiter = get_rate_limiter(self._limiter_name)
        breaker = get_breaker(self._breaker_name)
        async for attempt in async_retry_policy():
            with attempt:
                state.attempt = attempt.retry_state.attempt_number
                await limiter.aacquire(state.est_input, state.est_output, model=state.model)
                self._admit(state, breaker)
                try:
                    outcome = await self._attempt(state)
                except Exception as exc:
                    err = self._failed(state, exc, breaker, limiter)
                    if err is exc:
                        raise
                    raise err from exc
                except BaseException as exc:
                    breaker.record_failure(exc)  # cancelled: frees a half-open probe slot, never counted
                    raise
                breaker.record_success()
        return self._finish(state, outcome, limiter)

    async def acount_tokens(self, *, system: str | None, messages: Sequence[Mapping[str, Any]],
                            model: str | None = None, component: str) -> int:
        """Input tokens of a request, as the model service counts them (`messages.count_tokens`; free).

        One attempt: a failure is classified, recorded and raised (a count is shown to a person, who can ask again).
        It takes a request slot of the rate limiter: the API limits counts apart from messages, but a gateway
        or proxy in front of it may count both against one limit, which a batch runs at.
        """
        name = model or get_settings().default_model
        await get_rate_limiter(self._limiter_name).aacquire(0, 0, model=name)
        try:
            extra: dict[str, Any] = {} if system is None else {"system": system}
            result = await self.async_sdk().messages.count_tokens(
                model=name, messages=list(messages), **extra)  # type: ignore[arg-type]
        except Exception as exc:
            err = _classify_attempt_error(exc)
            record(err, component=component)
            raise err from exc
        return int(result.input_tokens)

    # ---- the steps of a call -------------------------------------------------------------
    def _new_state(
        self,
        system: str | Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        model: str | None,
        max_tokens: int | None,
        component: str,
        operation_id: str | None,
        on_delta: Callable[[str], None] | None,
        prefill: str,
        est_output_tokens: int | None,
    ) -> _CallState:
        s = get_settings()
        msgs = [dict(m) for m in messages]
        if msgs and msgs[-1].get("role") == "assistant":
            if prefill or not isinstance(msgs[-1].get("content"), str):
                raise ValidationError("prefill: the messages already end with an assistant message",
                                      field="prefill")
            # a trailing assistant message is a prefill: handled as one, so a retry can extend it
            prefill = str(msgs.pop()["content"])
        if not msgs:
            raise ValidationError("messages: at least one user message is needed", field="messages")
        blocks = None if isinstance(system, str) else [dict(b) for b in system]
        system_text = system if isinstance(system, str) else "".join(str(b.get("text", "")) for b in system)
        text = system_text + "".join(str(m.get("content", "")) for m in msgs) + prefill
        limit = max_tokens or s.max_output_tokens
        return _CallState(
            system=system_text if blocks is None else blocks, messages=msgs, model=model or s.default_model, max_tokens=limit,
            component=component, operation_id=operation_id, on_delta=on_delta, prefill=prefill or "",
            est_input=_estimate_tokens(text, s) + len(msgs) * s.estimate_tokens_per_message,
            est_output=min(est_output_tokens or limit, limit),
        )

    def _request(self, state: _CallState) -> dict[str, Any]:
        messages = list(state.messages)
        lead = state.prefill + state.partial
        if lead.strip():
            # the API refuses a final assistant message that ends in whitespace; the model
            # writes the whitespace again as the start of its continuation
            messages.append({"role": "assistant", "content": lead.rstrip()})
        return {"model": state.model, "max_tokens": state.max_tokens, "system": state.system,
                "messages": messages}

    def _joined(self, state: _CallState, new_text: str) -> str:
        """The continuation after the caller's prefill: the partial text so far, then `new_text`.

        Trailing whitespace of the lead was held back from the request (see `_request`); the
        model usually writes it again, so the part of `new_text` that repeats it is dropped.
        """
        lead = state.prefill + state.partial
        held = lead[len(lead.rstrip()):]
        repeated = 0
        while repeated < min(len(held), len(new_text)) and held[repeated] == new_text[repeated]:
            repeated += 1
        return state.partial + new_text[repeated:]

    def _admit(self, state: _CallState, breaker: Any) -> None:
        """breaker.before_call(); a refusal (CircuitOpenError, never retried) is recorded and keeps the partial text."""
        try:
            breaker.before_call()
        except AppError as err:
            if state.partial:
                err.partial_text = state.partial
            record(err, component=state.component, attempt=state.attempt, operation_id=state.operation_id,
                    context={"model": state.model, "provider": self.provider, "partial_chars": len(state.partial)})
            raise

    def _failed(self, state: _CallState, exc: Exception, breaker: Any, limiter: Any) -> AppError:
        """Classify a failed attempt, tell breaker and limiter, record it; return what to raise."""
        err = _classify_attempt_error(exc)
        breaker.record_failure(err)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        if headers is not None:
            limiter.observe_headers(headers, model=state.model)
        if err.code != ErrorCode.SPEND_LIMIT and (err.status_code == 429 or err.code == ErrorCode.RATE_LIMITED):
            # its own headers say whether it is about our pace; the retry policy waits its retry-after
            limiter.observe_rate_limited(err.retry_after_s, headers, model=state.model)
        if (isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 400) or isinstance(
                exc, anthropic.APIConnectionError):
            # refused or never answered: no tokens were spent, so give the estimate back
            limiter.record_usage(0, 0, state.est_input, state.est_output, model=state.model)
        if err.status_code in get_settings().rate_limit_refund_statuses:
            limiter.refund_request(model=state.model)
        if state.on_delta is not None or state.partial:
            err.partial_text = state.partial
        if not err.request_id and headers is not None:
            err.request_id = headers.get("request-id")
        if is_retryable(err) and state.attempt >= get_settings().retry_max_attempts:
            gave_up(err, state.attempt)  # the last attempt: its row must not promise another
        state.failures.append(err)
        record(err, component=state.component, attempt=state.attempt, request_id=err.request_id,
                operation_id=state.operation_id,
                context={"model": state.model, "provider": self.provider, "partial_chars": len(state.partial)})
        return err

    def _finish(self, state: _CallState, outcome: _AttemptOutcome, limiter: Any) -> LLMResult:
        usage = state.usage + outcome.usage
        limiter.record_usage(outcome.usage.input_tokens + outcome.usage.cache_creation_input_tokens,
                             outcome.usage.output_tokens, state.est_input, state.est_output, model=state.model)
        cost, known = priced_cost(outcome.model or state.model, usage)
        if state.failures:
            last = state.failures[-1]
            record(last, component=state.component, attempt=state.attempt, request_id=outcome.request_id,
                    operation_id=state.operation_id, severity=str(Severity.INFO), recovered=True,
                    context={"model": state.model, "provider": self.provider,
                             "recovered_after_failures": len(state.failures)})
        return LLMResult(
            text=outcome.text, usage=usage, cost_usd=cost, request_id=outcome.request_id,
            model=outcome.model or state.model, stop_reason=outcome.stop_reason, attempts=state.attempt,
            provider=self.provider, price_known=known, failures=[f.code for f in state.failures])

    def _observe(self, headers: Any, model: str) -> None:
        get_rate_limiter(self._limiter_name).observe_headers(headers, model=model)

    # ---- one attempt ---------------------------------------------------------------------------
    async def _attempt(self, state: _CallState) -> _AttemptOutcome:
        request = self._request(state)
        sdk = self.async_sdk()
        if state.on_delta is None:
            raw = await sdk.messages.with_raw_response.create(**request)
            self._observe(raw.headers, state.model)
            message = await raw.parse()
            return self._outcome(state, _text_of(message), message, raw.headers.get("request-id"))
        progress = _StreamProgress()
        try:
            async with sdk.messages.with_streaming_response.create(**request, stream=True) as raw:
                self._observe(raw.headers, state.model)
                async for sse in anthropic.AsyncStream.raw_events(raw.http_response):
                    event = _stream_event(sse, raw.http_response)
                    if event is not None:
                        progress.take(event, state.on_delta)
                request_id = raw.request_id
        except BaseException:
            self._keep_partial(state, progress)
            raise
        return self._stream_outcome(state, progress, request_id)

    # ---- helpers ----------------------------------------------------------------------------
    def _keep_partial(self, state: _CallState, progress: _StreamProgress) -> None:
        """After a cut: keep the text for the next attempt's prefill and count the tokens it cost."""
        text = "".join(progress.received)
        if text:
            state.partial = self._joined(state, text)
        if progress.started is not None:
            # billed like any answer: the prompt, and the output generated before the cut (estimated)
            state.usage = state.usage + Usage(
                input_tokens=progress.started.input_tokens,
                output_tokens=_estimate_tokens(text, get_settings()),
                cache_creation_input_tokens=progress.started.cache_creation_input_tokens,
                cache_read_input_tokens=progress.started.cache_read_input_tokens)

    def _stream_outcome(self, state: _CallState, progress: _StreamProgress,
                        request_id: str | None) -> _AttemptOutcome:
        if progress.stop_reason is None:
            # the body ended without message_delta/message_stop: a cut the transport did not raise
            self._keep_partial(state, progress)
            raise NetworkError("The answer stream ended before the message was complete.", code=ErrorCode.STREAM_CUT,
                               request_id=request_id, partial_text=state.partial)
        return _AttemptOutcome(
            text=self._joined(state, "".join(progress.received)), usage=Usage.from_api(progress.usage),
            request_id=request_id, model=progress.model or state.model, stop_reason=progress.stop_reason)

    def _outcome(self, state: _CallState, new_text: str, message: Any, request_id: str | None) -> _AttemptOutcome:
        return _AttemptOutcome(
            text=self._joined(state, new_text), usage=Usage.from_api(getattr(message, "usage", None)),
            request_id=request_id, model=str(getattr(message, "model", "") or state.model),
            stop_reason=getattr(message, "stop_reason", None))


def _stream_event(sse: Any, response: Any) -> dict[str, Any] | None:
    """The JSON of one server-sent event; None for those without data. An `error` event raises
    APIStatusError with the stream's status (200), as the SDK's own stream does."""
    if sse.event is None or sse.event == "ping" or (not sse.data and sse.event != "error"):
        return None
    if sse.event == "error":
        try:
            body: Any = sse.json()
            message = f"{body}"
        except ValueError:
            body, message = sse.data, sse.data or f"Error code: {response.status_code}"
        raise anthropic.APIStatusError(message, response=response, body=body)
    data = sse.json()
    return data if isinstance(data, dict) else None


def _text_of(message: Any) -> str:
    return "".join(getattr(b, "text", "") for b in getattr(message, "content", []) if getattr(b, "type", "") == "text")


# ---- the process-wide client ----------------------------------------------------------------
_client_lock = threading.Lock()
_client: ClaudeClient | None = None
_client_key: tuple[str, str, float] | None = None


def _settings_key(s: Settings) -> tuple[str, str, float]:
    return (s.anthropic_base_url, s.anthropic_api_key, s.request_timeout_s)


def _build_client(s: Settings, sandbox: Any = None) -> ClaudeClient:
    chaos.use(None)
    if s.anthropic_base_url:
        return ClaudeClient(provider="endpoint", base_url=s.anthropic_base_url.rstrip("/"),
                            api_key=s.anthropic_api_key or _PLACEHOLDER_KEY, settings=s)
    if s.anthropic_api_key:
        return ClaudeClient(provider="claude", base_url=None, api_key=s.anthropic_api_key, settings=s)
    if sandbox is None:
        sandbox = SandboxServer(SandboxConfig.from_settings())
        sandbox.start()
    chaos.use(sandbox)
    return ClaudeClient(provider="sandbox", base_url=sandbox.base_url, api_key=_PLACEHOLDER_KEY,
                        sandbox=sandbox, settings=s)


def get_client() -> ClaudeClient:
    """The process-wide client for the settings in force (starts the sandbox once if it is needed).

    When the key, base URL or timeout in the settings change (the Settings page), the next
    call builds a new client; an in-process sandbox is kept if the new client still needs it.
    """
    global _client, _client_key
    s = get_settings()
    key = _settings_key(s)
    if _client is not None and _client_key == key:
        return _client
    with _client_lock:
        if _client is not None and _client_key == key:
            return _client
        old = _client
        kept = old.sandbox if old is not None and not s.anthropic_base_url and not s.anthropic_api_key else None
        _client, _client_key = _build_client(s, kept), key
        client = _client
    if old is not None and old.sandbox is not None and old.sandbox is not kept:
        old.sandbox.stop()  # calls still running on it fail as connection errors and are retried
    return client


def reset_client() -> None:
    """Close the process-wide client (and its in-process sandbox); the next get_client() builds anew."""
    global _client, _client_key
    with _client_lock:
        client, _client, _client_key = _client, None, None
    chaos.use(None)
    if client is not None:
        client.close()
