"""The Claude client against a real sandbox over HTTP, through the real SDK: retries, breaker, limiter, streams."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator

import anthropic
import pytest
from sqlalchemy import select

from core.config import reload_settings
from core.errorlog import flush, recent, reset_recorder
from core.errors import APIError, AppError, GenerationError, NetworkError
from core.generation import GenerationParams, GenerationResult, parse_conversation
from core.generation.service import agenerate_conversation
from core.llm.client import ClaudeClient, get_client, reset_client
from core.llm.loops import run_sync
from core.llm.pricing import DEFAULT_MODEL, MODELS
from core.llm.sandbox import SandboxServer
from core.llm.types import LLMResult
from core.resilience import CircuitOpenError, get_breaker, reset_breakers, reset_rate_limiters
from core.store.schema import error_logs

PROMPT = "Persona: a nurse\nEmotion: tired\nTopic: night shifts\nTurns: 4"


@pytest.fixture(autouse=True)
def roomy_limits(monkeypatch) -> Iterator[None]:
    """Limits far above what a test sends, fresh breakers/limiters/client, and a fresh recorder."""
    monkeypatch.setenv("STUDIO_RATE_LIMIT_RPM", "1000000")
    monkeypatch.setenv("STUDIO_RATE_LIMIT_INPUT_TPM", "1000000000")
    monkeypatch.setenv("STUDIO_RATE_LIMIT_OUTPUT_TPM", "1000000000")
    monkeypatch.setenv("STUDIO_BREAKER_FAILURE_THRESHOLD", "1000")
    reload_settings()
    reset_breakers()
    reset_rate_limiters()
    reset_client()
    yield
    reset_client()
    reset_recorder()
    reset_breakers()
    reset_rate_limiters()


def _settings(monkeypatch, **values: object) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"STUDIO_{name.upper()}", str(value))
    reload_settings()


SANDBOX = {"latency_ms": 0, "tokens_per_s": 50_000.0, "seed": 7}


@pytest.fixture
def sandbox(sandbox: SandboxServer, monkeypatch) -> Callable[..., SandboxServer]:
    """The shared sandbox with the given config on top of the module's fast one; the app is not pointed at it."""
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    reload_settings()
    reset_client()

    def start(**config: object) -> SandboxServer:
        sandbox.configure(**config)
        sandbox.reset()
        return sandbox

    return start


def _client(srv: SandboxServer) -> ClaudeClient:
    return ClaudeClient(provider="endpoint", base_url=srv.base_url, api_key="sk-test")


def _when(srv: SandboxServer, fault: str, then: Callable[[], None]) -> threading.Thread:
    """Run `then` as soon as the sandbox has injected one `fault` (a watcher thread)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if srv.stats()["faults"].get(fault, 0) >= 1:
                then()
                return
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _complete(client: ClaudeClient, **kwargs: object) -> LLMResult:
    """One call from sync code, as the CLI and the drafts make it."""
    return run_sync(client.acomplete(system="You write conversations.",
                                     messages=[{"role": "user", "content": PROMPT}], component="test.client",
                                     **kwargs))


def _generate(params: GenerationParams, **kwargs: object) -> GenerationResult:
    """One generation from sync code, as the CLI and the drafts run it."""
    return run_sync(agenerate_conversation(params, **kwargs))


def test_the_default_model_raises_no_deprecation_warning_and_an_old_one_does(sandbox):
    """messages.create with DEFAULT_MODEL is silent; a deprecated model warns (so the check can fail)."""
    srv = sandbox()
    sdk = anthropic.Anthropic(base_url=srv.base_url, api_key="sk-test", max_retries=0)
    assert not MODELS[DEFAULT_MODEL].deprecated
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        message = sdk.messages.create(model=DEFAULT_MODEL, max_tokens=200,
                                      messages=[{"role": "user", "content": PROMPT}])
    assert message.content
    deprecated = next(name for name, info in MODELS.items() if info.deprecated)
    with pytest.warns(DeprecationWarning):
        sdk.messages.create(model=deprecated, max_tokens=50, messages=[{"role": "user", "content": PROMPT}])


def test_without_key_or_base_url_get_client_starts_an_in_process_sandbox():
    """No ANTHROPIC_* settings: the client is the sandbox on loopback, and a call returns usage and cost."""
    client = get_client()
    assert client.provider == "sandbox" and client.sandbox is not None
    assert client.base_url.startswith("http://127.0.0.1:")
    assert get_client() is client
    result = _complete(client)
    assert result.text and result.usage.output_tokens > 0 and result.cost_usd > 0
    assert result.request_id and result.attempts == 1


def test_with_a_base_url_the_client_goes_there(sandbox, monkeypatch):
    """Setting ANTHROPIC_BASE_URL switches the client to that endpoint and stops the in-process sandbox."""
    srv = sandbox()
    before = get_client()
    assert before.provider == "sandbox" and before.sandbox.running
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
    reload_settings()
    client = get_client()
    assert client.provider == "endpoint" and client.sandbox is None
    assert not before.sandbox.running
    _complete(client)
    assert srv.stats()["messages_requests"] == 1


def test_fifty_generations_under_30_percent_faults_all_succeed_and_the_log_holds_the_retries(
        sandbox, monkeypatch, engine):
    """With 30% injected 429/500/503/529, 50 generations succeed; every failed attempt is a log row."""
    # 0.3**10 per call: a loss is a one-in-three-thousand event over the run, not a flake
    _settings(monkeypatch, retry_max_attempts=10)
    srv = sandbox(fault_rate=0.3, retry_after_s=0)
    client = _client(srv)
    params = GenerationParams("customer_support", "a shop owner", "annoyed", "a missing refund", 4)
    results = [_generate(params, client=client, component="test.faults") for _ in range(50)]
    assert all(len(r.conversation.turns) == 4 for r in results)
    failures = sum(len(r.llm.failures) for r in results)
    injected = sum(srv.stats()["faults"][k] for k in ("429", "500", "503", "529"))
    assert failures == injected > 0
    recovered_calls = sum(1 for r in results if r.llm.failures)
    assert flush(10)
    with engine.connect() as conn:
        rows = conn.execute(select(error_logs.c.attempt, error_logs.c.recovered, error_logs.c.request_id,
                                   error_logs.c.error_type)
                            .where(error_logs.c.component == "test.faults")).all()
    assert len([r for r in rows if not r.recovered]) == failures
    assert len([r for r in rows if r.recovered]) == recovered_calls
    assert all(r.attempt and r.attempt >= 1 for r in rows)
    assert all(r.request_id for r in rows if not r.recovered)
    assert {r.error_type for r in rows} == {"api"}


def test_a_401_is_tried_once_and_surfaces_the_authentication_message(sandbox):
    """A rejected key is not retried; the error says to check the API key."""
    srv = sandbox(force_status=401, force_message="invalid x-api-key")
    with pytest.raises(APIError) as info:
        _complete(_client(srv))
    assert info.value.code == "authentication_failed"
    assert "API key" in info.value.user_message
    assert srv.stats()["messages_requests"] == 1


def test_a_spend_limit_429_is_tried_once_and_does_not_pause_the_limiter(sandbox):
    """A 429 saying the spend limit is reached is final at once, and is not taken as a pacing signal."""
    from core.resilience import get_rate_limiter

    srv = sandbox(force_status=429, force_message="You have reached your specified API usage limits "
                  "(spend limit).", force_error_code="enforced_spend_limit_reached", retry_after_s=30)
    with pytest.raises(APIError) as info:
        _complete(_client(srv))
    assert info.value.code == "spend_limit" and not info.value.is_recoverable
    assert srv.stats()["messages_requests"] == 1
    snap = get_rate_limiter("claude").snapshot()
    assert snap["factor"] == 1.0 and snap["rate_limited"] == 0 and snap["rate_limited_ignored"] == 0


def test_a_persistent_529_opens_the_breaker_which_fails_fast_then_a_probe_closes_it(sandbox, monkeypatch, engine):
    """3 overloads open the breaker; calls then fail without a request; after the cool-down a probe closes it."""
    _settings(monkeypatch, breaker_failure_threshold=3, breaker_cooldown_s=1, breaker_success_threshold=1,
              retry_max_attempts=2)
    srv = sandbox(force_status=529, retry_after_s=0)
    client = _client(srv)
    with pytest.raises(APIError) as first:
        _complete(client)
    assert first.value.code == "overloaded" and get_breaker("claude").state == "closed"
    with pytest.raises(CircuitOpenError):
        _complete(client)  # attempt 1 is the 3rd failure; attempt 2 meets the open breaker
    assert get_breaker("claude").state == "open"
    sent = srv.stats()["messages_requests"]
    assert sent == 3
    started = time.monotonic()
    with pytest.raises(CircuitOpenError) as fast:
        _complete(client)
    assert time.monotonic() - started < 0.5
    assert fast.value.retry_after_s is not None and fast.value.retry_after_s <= 1
    assert srv.stats()["messages_requests"] == sent  # failed fast: nothing reached the server
    assert flush(10)
    logged = [(r["error_code"], r["attempt"]) for r in recent(50) if r["component"] == "test.client"]
    assert logged.count(("overloaded", 1)) == 2 and ("circuit_open", 1) in logged
    srv.configure(force_status=None)
    time.sleep(1.05)
    result = _complete(client)
    assert result.text and get_breaker("claude").state == "closed"


def test_retry_after_two_seconds_is_honoured(sandbox, monkeypatch):
    """After a 429 with retry-after: 2, the next attempt comes at least 2 s later."""
    _settings(monkeypatch, retry_after_when_instant=True)
    srv = sandbox(rate_429=1.0, retry_after_s=2)
    _when(srv, "429", lambda: srv.configure(rate_429=0.0))
    started = time.monotonic()
    result = _complete(_client(srv))
    elapsed = time.monotonic() - started
    assert result.attempts == 2 and result.failures == ["rate_limited"]
    assert elapsed >= 2.0


def test_a_stream_cut_every_time_ends_in_a_classified_error_holding_all_partial_text(sandbox, monkeypatch):
    """When every attempt's stream is cut, the final error is recoverable and its partial_text is all text seen."""
    _settings(monkeypatch, retry_max_attempts=2)
    srv = sandbox(rate_stream_cut=1.0)
    deltas: list[str] = []
    with pytest.raises(AppError) as info:
        _complete(_client(srv), on_delta=deltas.append)
    err = info.value
    assert isinstance(err, NetworkError | APIError) and err.is_recoverable
    assert err.partial_text and err.partial_text == "".join(deltas)
    assert srv.stats()["faults"]["stream_cut"] == 2


def test_a_stream_cut_then_retried_continues_from_the_partial_text(sandbox):
    """A cut stream is resumed by prefill: the second request continues the text, nothing is repeated."""
    # latency gives the watcher a head start over the retry
    srv = sandbox(rate_stream_cut=1.0, latency_ms=100)
    _when(srv, "stream_cut", lambda: srv.configure(rate_stream_cut=0.0))
    deltas: list[str] = []
    params = GenerationParams("tutoring", "a student", "curious", "fractions", 6)
    result = _generate(params, client=_client(srv), on_delta=deltas.append)
    assert result.llm.attempts >= 2 and set(result.llm.failures) == {"connection_error"}
    assert result.llm.text == "".join(deltas)  # the UI saw exactly the final text, once
    assert result.llm.usage.input_tokens == srv.stats()["input_tokens"]  # the cut attempt's prompt is counted
    assert len(result.conversation.turns) == 6
    assert parse_conversation(result.raw_text, 6) == result.conversation.turns


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_error_event_mid_stream_is_retried_and_continues_from_the_partial_text(sandbox, mode):
    """An overloaded_error event after a 200 is a recoverable "overloaded" failure; the retry continues the text."""
    import asyncio

    srv = sandbox(rate_stream_error=1.0, latency_ms=100)
    _when(srv, "stream_error", lambda: srv.configure(rate_stream_error=0.0))
    deltas: list[str] = []
    params = GenerationParams("tutoring", "a student", "curious", "fractions", 6)
    if mode == "sync":
        result = _generate(params, client=_client(srv), on_delta=deltas.append)
    else:
        result = asyncio.run(agenerate_conversation(params, client=_client(srv), on_delta=deltas.append))
    assert result.llm.attempts == 2 and result.llm.failures == ["overloaded"]
    assert result.llm.text == "".join(deltas)  # the view saw the final text once, the cut part not repeated
    assert result.llm.usage.input_tokens == srv.stats()["input_tokens"]  # the failed attempt's prompt counts
    assert parse_conversation(result.raw_text, 6) == result.conversation.turns


def test_a_prefill_is_continued_and_not_repeated(sandbox):
    """With a prefill the result text is the continuation only; prefill + text is the whole reply."""
    srv = sandbox()
    prefill = "User: I keep falling asleep on night shifts.\n\nAssistant:"
    client = _client(srv)
    result = _complete(client, prefill=prefill)
    assert not result.text.startswith("User:")
    assert len(parse_conversation(prefill + result.text, 4)) == 4
    as_message = run_sync(client.acomplete(system="You write conversations.", component="test.client",
                                           messages=[{"role": "user", "content": PROMPT},
                                                     {"role": "assistant", "content": prefill}]))
    assert len(parse_conversation(prefill + as_message.text, 4)) == 4
    # trailing whitespace cannot be sent (the API refuses it); it is held back and not doubled
    spaced = "User: I keep falling asleep on night shifts.\n\n"
    after_space = _complete(client, prefill=spaced)
    assert not after_space.text[:1].isspace()
    assert len(parse_conversation(spaced + after_space.text, 4)) == 4


def test_a_malformed_reply_is_retried_then_reported_as_a_generation_error(sandbox, monkeypatch):
    """Replies that are never a conversation are asked for 1 + generation_invalid_retries times, then fail."""
    _settings(monkeypatch, generation_invalid_retries=2)
    srv = sandbox(rate_invalid_conversation=1.0)
    params = GenerationParams("personal_finance", "a freelancer", "anxious", "taxes", 4)
    with pytest.raises(GenerationError) as info:
        _generate(params, client=_client(srv))
    assert info.value.code == "invalid_response"
    assert srv.stats()["messages_requests"] == 3


def test_one_malformed_reply_is_retried_and_the_next_one_succeeds(sandbox):
    """A malformed reply then a good one gives a conversation; usage covers both; the view restarts once."""
    srv = sandbox(rate_invalid_conversation=1.0, latency_ms=100)
    _when(srv, "invalid_conversation", lambda: srv.configure(rate_invalid_conversation=0.0))
    params = GenerationParams("personal_finance", "a freelancer", "anxious", "taxes", 4)
    shown: list[str] = []
    result = _generate(params, client=_client(srv), on_delta=shown.append, on_restart=shown.clear)
    assert result.invalid_attempts == 1 and len(result.conversation.turns) == 4
    assert "".join(shown) == result.raw_text  # the streamed view was cleared before the fresh reply
    assert result.usage.input_tokens > result.llm.usage.input_tokens


RUN_RPM = 2400  # 200 calls take 5 s at this pace


def test_the_limiter_keeps_a_200_call_run_under_the_sandbox_rpm(sandbox, monkeypatch):
    """200 calls from 8 threads, paced by the limiter at 2400 RPM against a 2400 RPM sandbox: under 5% get a 429.

    The sandbox's bucket starts with a whole minute's allowance, so a run shorter than a minute
    cannot outrun it; bench/resilience.py shows the limit binding (RPM 300, N=1000).
    """
    _settings(monkeypatch, rate_limit_rpm=RUN_RPM, retry_max_attempts=10)
    srv = sandbox(rpm=RUN_RPM)
    client = _client(srv)
    errors: list[BaseException] = []
    counter = iter(range(200))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            try:
                _complete(client, max_tokens=300)
            except AppError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stats = srv.stats()
    assert not errors
    assert stats["messages_requests"] - stats["rate_limited"] == 200
    assert stats["rate_limited"] < 0.05 * 200
    from core.resilience import get_rate_limiter

    limiter = get_rate_limiter("claude").snapshot()
    assert limiter["requests_in_window"] == stats["messages_requests"]  # every request was paced by it
    assert limiter["requests_in_window"] <= RUN_RPM


def test_async_streamed_generations_survive_faults_and_cut_streams(sandbox, monkeypatch):
    """20 concurrent async generations with 30% status faults and 10% cut streams all succeed."""
    import asyncio

    _settings(monkeypatch, retry_max_attempts=10)
    srv = sandbox(fault_rate=0.3, rate_stream_cut=0.1, retry_after_s=0)
    client = _client(srv)
    params = GenerationParams("tech_troubleshooting", "an accountant", "stressed", "slow Wi-Fi", 6)

    async def run() -> list:
        streams: list[list[str]] = [[] for _ in range(20)]
        results = await asyncio.gather(*(
            agenerate_conversation(params, client=client, on_delta=streams[i].append, component="test.async")
            for i in range(20)))
        return list(zip(results, streams, strict=True))

    pairs = asyncio.run(run())
    assert all(len(r.conversation.turns) == 6 and r.llm.text == "".join(s) for r, s in pairs)
    assert sum(len(r.llm.failures) for r, _s in pairs) > 0


def test_async_generation_without_streaming_returns_the_whole_reply(sandbox, monkeypatch):
    """An async call with no on_delta parses the reply: the conversation has every turn."""
    import asyncio

    _settings(monkeypatch, retry_max_attempts=10)
    srv = sandbox(fault_rate=0.2, retry_after_s=0)
    client = _client(srv)
    params = GenerationParams("tech_troubleshooting", "an accountant", "stressed", "slow Wi-Fi", 6)

    async def run() -> list:
        return await asyncio.gather(*(agenerate_conversation(params, client=client, component="test.async")
                                      for _ in range(5)))

    results = asyncio.run(run())
    assert all(len(r.conversation.turns) == 6 and r.llm.usage.output_tokens > 0 for r in results)


def test_dropped_connections_and_malformed_bodies_are_retried(sandbox, monkeypatch):
    """Connections closed before headers and non-JSON bodies are classified, retried, and overcome."""
    _settings(monkeypatch, retry_max_attempts=10)
    srv = sandbox(rate_disconnect=0.3, rate_malformed_json=0.2)
    client = _client(srv)
    results = [_complete(client) for _ in range(15)]
    codes = {code for r in results for code in r.failures}
    assert all(r.text for r in results)
    assert codes == {"connection_error", "malformed_json"}
