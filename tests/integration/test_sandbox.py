"""The sandbox model server, over real HTTP, through the real anthropic SDK."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx2
import pytest

from core.config import ROOT
from core.llm.sandbox import SandboxConfig, SandboxServer

MODEL = "claude-sonnet-5-5"
FAST = {"latency_ms": 0, "tokens_per_s": 1_000_000.0}
BRIEF = "Write the conversation.\nPersona: retired teacher\nEmotion: anxious\nTopic: a surprise tax bill\nTurns: {n}"
ALL_RATES = ("fault_rate", "rate_429", "rate_500", "rate_503", "rate_529", "rate_slow", "rate_disconnect",
             "rate_stream_cut", "rate_stream_error", "rate_malformed_json", "rate_invalid_conversation")
_BLOCK = re.compile(r"^(User|Assistant): (\S.*)$")


def ask(n: int = 6, topic: str = "a surprise tax bill") -> list[dict]:
    return [{"role": "user", "content": BRIEF.format(n=n).replace("a surprise tax bill", topic)}]


def turns_of(text: str) -> list[tuple[str, str]]:
    """Parse the contract's format strictly; raise ValueError on anything else."""
    if not text.startswith(("User:", "Assistant:")):
        raise ValueError("text before the first block")
    turns = []
    for block in text.split("\n\n"):
        m = _BLOCK.match(block)
        if not m:
            raise ValueError(f"not a block: {block[:40]!r}")
        turns.append((m.group(1), m.group(2)))
    for i, (role, _) in enumerate(turns):
        if role != ("User" if i % 2 == 0 else "Assistant"):
            raise ValueError("roles do not alternate from the user")
    return turns


SANDBOX = {"seed": 7, **FAST}


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=sandbox.base_url, api_key="test-key", max_retries=0, timeout=10.0)
    yield c
    c.close()


def only(sandbox: SandboxServer, **rates: float) -> None:
    sandbox.configure(**{**{name: 0.0 for name in ALL_RATES}, **rates})


# ---- answers ----------------------------------------------------------------------------------


def test_a_generation_request_gets_a_conversation_with_the_asked_number_of_turns(client):
    """A brief with Turns: 6 gets six alternating blocks, usage and end_turn."""
    msg = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6))
    text = msg.content[0].text
    assert len(turns_of(text)) == 6
    assert "a surprise tax bill" in text
    assert msg.stop_reason == "end_turn" and msg.model == MODEL and msg.id.startswith("msg_")
    assert msg.usage.input_tokens > 0
    assert msg.usage.output_tokens == -(-len(text) // 4)


def test_streaming_gives_the_same_text_and_usage_as_a_plain_call(client):
    """The stream's deltas add up to the plain call's text, with equal usage and stop reason."""
    plain = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(8))
    with client.messages.stream(model=MODEL, max_tokens=2000, messages=ask(8)) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 10
    assert "".join(pieces) == final.content[0].text == plain.content[0].text
    assert (final.usage.input_tokens, final.usage.output_tokens) == (plain.usage.input_tokens, plain.usage.output_tokens)
    assert final.stop_reason == "end_turn"
    assert stream.request_id and stream.request_id.startswith("req_")


def test_raw_stream_events_arrive_in_the_real_order(client):
    """message_start, content_block_start, deltas, content_block_stop, message_delta, message_stop."""
    events = list(client.messages.create(model=MODEL, max_tokens=500, messages=ask(2), stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[0].message.usage.input_tokens > 0
    assert events[-2].usage.output_tokens > 1 and events[-2].delta.stop_reason == "end_turn"


def test_the_async_client_works_streaming_and_not(sandbox):
    """AsyncAnthropic parses both kinds of answer, many at once."""

    async def main() -> tuple[set[str], set[str]]:
        ac = anthropic.AsyncAnthropic(base_url=sandbox.base_url, api_key="k", max_retries=0)

        async def plain() -> str:
            return (await ac.messages.create(model=MODEL, max_tokens=2000, messages=ask(4))).content[0].text

        async def streamed() -> str:
            async with ac.messages.stream(model=MODEL, max_tokens=2000, messages=ask(4)) as s:
                return await s.get_final_text()

        try:
            a = await asyncio.gather(*[plain() for _ in range(10)])
            b = await asyncio.gather(*[streamed() for _ in range(10)])
        finally:
            await ac.close()
        return set(a), set(b)

    plain_texts, streamed_texts = asyncio.run(main())
    assert plain_texts == streamed_texts and len(plain_texts) == 1
    assert len(turns_of(plain_texts.pop())) == 4


def test_a_prefill_is_continued_not_repeated(client):
    """Prefill + reply is the whole conversation, whether the prefill is the sandbox's own start or not."""
    full = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6)).content[0].text
    prefill = full[: len(full) // 3].rstrip()
    reply = client.messages.create(model=MODEL, max_tokens=2000,
                                   messages=[*ask(6), {"role": "assistant", "content": prefill}])
    assert prefill + reply.content[0].text == full
    own = "User: I got a letter about my taxes today and I panicked"
    reply = client.messages.create(model=MODEL, max_tokens=2000, messages=[*ask(6), {"role": "assistant", "content": own}])
    whole = own + reply.content[0].text
    assert not reply.content[0].text.startswith(own)
    assert len(turns_of(whole)) == 6


def test_the_same_request_and_seed_give_the_same_text_and_topics_differ(client, sandbox):
    """Text depends only on (seed, request): a second server repeats it; another topic or seed does not."""
    first = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6)).content[0].text
    with SandboxServer(SandboxConfig(seed=7, **FAST)) as twin, SandboxServer(SandboxConfig(seed=8, **FAST)) as other:
        c2 = anthropic.Anthropic(base_url=twin.base_url, api_key="k", max_retries=0)
        c3 = anthropic.Anthropic(base_url=other.base_url, api_key="k", max_retries=0)
        assert c2.messages.create(model=MODEL, max_tokens=2000, messages=ask(6)).content[0].text == first
        assert c3.messages.create(model=MODEL, max_tokens=2000, messages=ask(6)).content[0].text != first
    texts = {
        topic: client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6, topic)).content[0].text
        for topic in ("wifi router keeps dropping", "a refund for a broken blender", "studying for a calculus exam")
    }
    assert len(set(texts.values())) == 3
    # the topic picks the sentence bank, not just the topic words
    stripped = {t.replace(topic, "X") for topic, t in texts.items()}
    assert len(stripped) == 3


def test_a_request_without_a_brief_gets_a_short_plain_answer(client):
    """No Persona/Topic lines: one short reply, not a conversation."""
    msg = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Hello, who are you?"}])
    text = msg.content[0].text
    assert "User:" not in text and 10 < len(text) < 400
    assert "Hello, who are you?" in text


def test_max_tokens_truncates_the_answer(client):
    """A small max_tokens cuts the text and says so in stop_reason."""
    msg = client.messages.create(model=MODEL, max_tokens=20, messages=ask(10))
    assert msg.stop_reason == "max_tokens"
    assert 0 < msg.usage.output_tokens <= 20
    assert len(msg.content[0].text) <= 80


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, anthropic.BadRequestError),
        ({"max_tokens": 10, "messages": []}, 400, anthropic.BadRequestError),
        ({"max_tokens": 10, "messages": [{"role": "system", "content": "hi"}]}, 400, anthropic.BadRequestError),
        ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a "}]},
         400, anthropic.BadRequestError),
        ({"max_tokens": 10, "model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404,
         anthropic.NotFoundError),
    ],
)
def test_invalid_requests_are_refused_like_the_api_does(client, body, status, error):
    """Missing max_tokens, no messages, a bad role, trailing prefill whitespace, unknown model: 4xx errors."""
    params = {"model": MODEL, **body}
    with pytest.raises(error) as info:
        # the SDK's own low-level call, as messages.create refuses some of these before sending
        client.post("/v1/messages", body=params, cast_to=anthropic.types.Message)
    assert info.value.status_code == status
    assert info.value.body["type"] == "error"
    assert info.value.type == ("not_found_error" if status == 404 else "invalid_request_error")
    assert info.value.request_id and info.value.request_id.startswith("req_")


# ---- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "error", "error_type", "retry_after"),
    [
        ("rate_429", anthropic.RateLimitError, "rate_limit_error", "3"),
        ("rate_500", anthropic.InternalServerError, "api_error", None),
        ("rate_503", anthropic.ServiceUnavailableError, "api_error", None),
        ("rate_529", anthropic.OverloadedError, "overloaded_error", "3"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_injected_status_faults_surface_as_the_sdk_exception(client, sandbox, rate, error, error_type, retry_after,
                                                             streaming):
    """Each status fault raises its SDK class, with Anthropic's error shape and retry-after on 429/529."""
    only(sandbox, **{rate: 1.0}, retry_after_s=2.5)
    with pytest.raises(error) as info:
        if streaming:
            with client.messages.stream(model=MODEL, max_tokens=100, messages=ask(2)) as s:
                s.get_final_message()
        else:
            client.messages.create(model=MODEL, max_tokens=100, messages=ask(2))
    assert type(info.value) is error
    assert info.value.type == error_type
    assert info.value.response.headers.get("retry-after") == retry_after
    assert info.value.response.headers.get("request-id") == info.value.request_id
    if retry_after:
        assert info.value.response.headers["retry-after-ms"] == "2500"
    assert sandbox.stats()["faults"][rate.removeprefix("rate_")] == 1


def test_fault_rate_spreads_over_the_four_statuses(client, sandbox):
    """fault_rate=1 answers only 429/500/503/529, each of them at some point."""
    only(sandbox, fault_rate=1.0)
    statuses = set()
    for _ in range(60):
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(model=MODEL, max_tokens=100, messages=ask(2))
        statuses.add(info.value.status_code)
    assert statuses == {429, 500, 503, 529}


def test_a_disconnect_before_headers_is_a_connection_error(client, sandbox):
    """rate_disconnect closes the connection unanswered: APIConnectionError, streaming or not."""
    only(sandbox, rate_disconnect=1.0)
    with pytest.raises(anthropic.APIConnectionError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=ask(2))
    assert not isinstance(info.value, anthropic.APITimeoutError)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=100, messages=ask(2), stream=True)
    assert sandbox.stats()["faults"]["disconnect"] == 2


def test_a_slow_answer_times_the_client_out_and_frees_the_server(sandbox):
    """rate_slow outlasts a short client timeout: APITimeoutError, and the server thread lets go."""
    only(sandbox, rate_slow=1.0, slow_s=30.0)
    # the server is shared by this file's tests: count against what was open before this call
    before = sandbox.stats()
    c = anthropic.Anthropic(base_url=sandbox.base_url, api_key="k", max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        c.messages.create(model=MODEL, max_tokens=100, messages=ask(2))
    c.close()
    deadline = time.monotonic() + 20  # the server notices the client left within its poll; a loaded machine is slow
    while sandbox.stats()["client_gone"] <= before["client_gone"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.stats()["client_gone"] >= before["client_gone"] + 1  # this call's thread let go


def test_a_cut_stream_breaks_off_after_some_text(client, sandbox):
    """rate_stream_cut sends some deltas, then the connection drops without message_stop."""
    only(sandbox, rate_stream_cut=1.0)
    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        with client.messages.stream(model=MODEL, max_tokens=2000, messages=ask(6)) as s:
            for piece in s.text_stream:
                received.append(piece)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6))
    only(sandbox)
    full = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6)).content[0].text
    partial = "".join(received)
    assert 20 < len(partial) < len(full) and full.startswith(partial)


def test_a_stream_error_sends_an_error_event_after_some_text_on_its_200(client, sandbox):
    """rate_stream_error streams some deltas, then an overloaded_error event; the SDK raises it with status 200."""
    only(sandbox, rate_stream_error=1.0)
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model=MODEL, max_tokens=2000, messages=ask(6)) as s:
            for piece in s.text_stream:
                received.append(piece)
    assert info.value.status_code == 200
    assert info.value.body["error"]["type"] == "overloaded_error"
    assert received and sandbox.stats()["faults"]["stream_error"] == 1


def test_a_malformed_body_fails_json_parsing(client, sandbox):
    """rate_malformed_json answers 200 with a body, or an event, that is not JSON."""
    only(sandbox, rate_malformed_json=1.0)
    with pytest.raises(json.JSONDecodeError):
        client.messages.create(model=MODEL, max_tokens=2000, messages=ask(4))
    with pytest.raises(json.JSONDecodeError):
        with client.messages.stream(model=MODEL, max_tokens=2000, messages=ask(4)) as s:
            s.get_final_message()


def test_an_invalid_conversation_parses_as_a_message_but_not_as_a_conversation(client, sandbox):
    """rate_invalid_conversation gives a 200 whose text breaks the format (count, markers, preamble)."""
    only(sandbox, rate_invalid_conversation=1.0)
    for n in range(4, 12):
        text = client.messages.create(model=MODEL, max_tokens=3000, messages=ask(n)).content[0].text
        with pytest.raises(ValueError):
            turns = turns_of(text)
            if len(turns) != n:
                raise ValueError("wrong count")


def test_the_fault_sequence_repeats_for_a_seed(sandbox):
    """Two servers with the same seed answer a sequence of calls with the same statuses."""

    def statuses(srv: SandboxServer) -> list[int]:
        c = anthropic.Anthropic(base_url=srv.base_url, api_key="k", max_retries=0)
        out = []
        for _ in range(30):
            try:
                c.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
                out.append(200)
            except anthropic.APIStatusError as exc:
                out.append(exc.status_code)
        c.close()
        return out

    with SandboxServer(SandboxConfig(seed=11, fault_rate=0.5, **FAST)) as a, \
            SandboxServer(SandboxConfig(seed=11, fault_rate=0.5, **FAST)) as b:
        first, second = statuses(a), statuses(b)
    assert first == second
    assert 200 in first and len(set(first)) > 2


def test_force_status_401_is_an_authentication_error(client, sandbox):
    """force_status=401 rejects every call with authentication_error, until it is cleared."""
    sandbox.configure(force_status=401)
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    assert info.value.type == "authentication_error"
    sandbox.configure(force_status=529, force_message="Overloaded for a while")
    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    assert info.value.api_message == "Overloaded for a while"
    assert info.value.response.headers["retry-after"] == "1"
    sandbox.configure(force_status=None)
    assert client.messages.create(model=MODEL, max_tokens=50, messages=ask(2)).stop_reason


def test_a_forced_spend_limit_429_carries_its_error_code(client, sandbox):
    """force_error_code puts error.details.error_code in the body, so the SDK names the cause."""
    sandbox.configure(force_status=429, force_error_code="enforced_spend_limit_reached")
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    assert info.value.error_code == "enforced_spend_limit_reached"


def test_a_required_api_key_must_match(sandbox):
    """With api_key_required set, a wrong key gets 401 and the right one an answer."""
    sandbox.configure(api_key_required="right-key")
    wrong = anthropic.Anthropic(base_url=sandbox.base_url, api_key="wrong-key", max_retries=0)
    right = anthropic.Anthropic(base_url=sandbox.base_url, api_key="right-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    assert right.messages.create(model=MODEL, max_tokens=50, messages=ask(2)).content


# ---- limits -------------------------------------------------------------------------------------


def test_the_rpm_limit_answers_429_with_a_correct_retry_after(client, sandbox):
    """rpm=3: three calls pass, the fourth gets 429 with retry-after ~= 60/3 s, and headers count down."""
    sandbox.configure(rpm=3)
    remaining = []
    for _ in range(3):
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=ask(2))
        remaining.append(raw.headers["anthropic-ratelimit-requests-remaining"])
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
        assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert remaining == ["2", "1", "0"]
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    headers = info.value.response.headers
    assert 15_000 < int(headers["retry-after-ms"]) <= 20_000  # 60 s / 3, less the refill since
    assert headers["retry-after"] == str(-(-int(headers["retry-after-ms"]) // 1000))
    assert info.value.type == "rate_limit_error"
    stats = sandbox.stats()
    assert stats["rate_limited"] == 1 and stats["by_status"]["429"] == 1


def test_token_limits_refuse_without_charging_the_refused_request(client, sandbox):
    """An input-TPM 429 takes no tokens: the stats count only the admitted calls."""
    one = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(2)).usage
    sandbox.reset()
    sandbox.configure(input_tpm=one.input_tokens * 2 + 1, output_tpm=100_000)
    client.messages.create(model=MODEL, max_tokens=2000, messages=ask(2))
    client.messages.create(model=MODEL, max_tokens=2000, messages=ask(2))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=2000, messages=ask(2))
    assert "input tokens per minute" in info.value.api_message
    assert float(info.value.response.headers["retry-after-ms"]) > 0
    stats = sandbox.stats()
    assert stats["input_tokens"] == 2 * one.input_tokens
    assert stats["output_tokens"] == 2 * one.output_tokens
    assert info.value.response.headers["anthropic-ratelimit-input-tokens-limit"] == str(one.input_tokens * 2 + 1)
    assert "anthropic-ratelimit-tokens-remaining" in info.value.response.headers


# ---- admin, stats, lifecycle --------------------------------------------------------------------


def test_the_admin_endpoint_changes_faults_while_running(client, sandbox):
    """POST /_sandbox/config turns a fault on and off; GET /_sandbox/stats and POST /_sandbox/reset work."""
    http = httpx2.Client(base_url=sandbox.base_url)
    assert http.get("/_sandbox/config").json()["seed"] == 7
    assert http.post("/_sandbox/config", json={"rate_500": 1.0}).json()["rate_500"] == 1.0
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    http.post("/_sandbox/config", json={"rate_500": 0})
    assert client.messages.create(model=MODEL, max_tokens=50, messages=ask(2)).content
    stats = http.get("/_sandbox/stats").json()
    assert stats["faults"]["500"] == 1 and stats["by_status"]["200"] >= 1
    bad = http.post("/_sandbox/config", json={"rate_500": 2})
    assert bad.status_code == 400 and "rate_500" in bad.json()["error"]["message"]
    assert http.post("/_sandbox/config", json={"nonsense": 1}).status_code == 400
    assert http.post("/_sandbox/reset").json() == {"reset": True}
    assert http.get("/_sandbox/stats").json()["messages_requests"] == 0
    http.close()


def test_fifty_concurrent_connections_are_served_and_released(sandbox):
    """50 threads x 8 calls all succeed on ~50 connections, and stop() leaves no server threads."""
    c = anthropic.Anthropic(base_url=sandbox.base_url, api_key="k", max_retries=0)

    def call(i: int) -> int:
        if i % 2:
            return c.messages.create(model=MODEL, max_tokens=2000, messages=ask(4)).usage.output_tokens
        with c.messages.stream(model=MODEL, max_tokens=2000, messages=ask(4)) as s:
            return s.get_final_message().usage.output_tokens

    with ThreadPoolExecutor(50) as pool:
        outputs = list(pool.map(call, range(400)))
    assert len(set(outputs)) == 1
    stats = sandbox.stats()
    assert stats["by_status"] == {"200": 400}
    assert stats["connections"] <= 60 and stats["peak_connections"] >= 10
    sandbox.stop()
    c.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("sandbox-")]


def test_stop_closes_idle_keep_alive_connections_promptly(sandbox, client):
    """stop() returns quickly even while clients hold idle connections open."""
    client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))
    assert sandbox.stats()["active_connections"] == 1
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 3.0  # generous: the point is it does not wait for idle timeouts
    assert not sandbox.running
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=50, messages=ask(2))


def test_models_are_listed(client):
    """GET /v1/models pages through the SDK and includes the default model."""
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert client.models.retrieve(MODEL).display_name


# ---- batches ------------------------------------------------------------------------------------


def _wait_ended(client: anthropic.Anthropic, batch_id: str) -> anthropic.types.messages.MessageBatch:
    deadline = time.monotonic() + 10
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def test_a_message_batch_runs_to_results_through_the_sdk(client, sandbox):
    """create -> in_progress -> ended, results as JSONL with one succeeded or errored line per custom_id."""
    sandbox.configure(batch_processing_s=0.2)
    requests = [
        {"custom_id": f"item-{i}", "params": {"model": MODEL, "max_tokens": 2000, "messages": ask(4, f"topic {i}")}}
        for i in range(3)
    ]
    requests.append({"custom_id": "broken", "params": {"model": MODEL, "messages": ask(2)}})
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 4
    assert batch.results_url is None
    ended = _wait_ended(client, batch.id)
    assert ended.processing_status == "ended"
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (3, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"item-0", "item-1", "item-2", "broken"}
    assert results["broken"].type == "errored"
    assert results["broken"].error.error.type == "invalid_request_error"
    assert len(turns_of(results["item-1"].message.content[0].text)) == 4


def test_batches_list_in_pages_and_cancel(client, sandbox):
    """list pages newest first with has_more/after_id; cancel ends a batch with its items canceled."""
    sandbox.configure(batch_processing_s=60)
    params = {"model": MODEL, "max_tokens": 100, "messages": ask(2)}
    created = [client.messages.batches.create(requests=[{"custom_id": "a", "params": params}]).id for _ in range(5)]
    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == created[::-1][:2] and first.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == created[::-1]  # auto-paging
    canceling = client.messages.batches.cancel(created[0])
    assert canceling.processing_status == "canceling"
    ended = _wait_ended(client, created[0])
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(created[0])] == ["canceled"]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_missing")


# ---- CLI ----------------------------------------------------------------------------------------


def test_the_cli_serves_until_sigterm(tmp_path):
    """`python -m core sandbox --port 0` prints its URL, answers the SDK, takes its flags, and exits 0 on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "sandbox", "--port", "0", "--seed", "3", "--latency-ms", "0",
         "--tokens-per-s", "100000", "--rpm", "100", "--batch-processing-s", "0", "--batch-error-rate", "0.25"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        c = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
        raw = c.messages.with_raw_response.create(model=MODEL, max_tokens=2000, messages=ask(4))
        assert len(turns_of(raw.parse().content[0].text)) == 4
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "100"
        with urllib.request.urlopen(f"{url}/_sandbox/config") as resp:
            config = json.loads(resp.read())
        assert (config["batch_processing_s"], config["batch_error_rate"]) == (0.0, 0.25)
        c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "stopped after 1 message calls" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- the pieces behind the server ---------------------------------------------------------------


def test_count_tokens_agrees_with_the_usage_of_a_call(client):
    """count_tokens, plain and streamed calls all report the same input tokens (blocks or strings)."""
    system = [{"type": "text", "text": "You write training conversations."}]
    messages = [{"role": "user", "content": [{"type": "text", "text": BRIEF.format(n=4)}]}]
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=messages).input_tokens
    used = client.messages.create(model=MODEL, max_tokens=2000, system=system, messages=messages).usage
    assert counted == used.input_tokens > 10


def test_stop_sequences_end_the_answer_where_they_occur(client):
    """A stop sequence found in the text cuts it there, with stop_reason stop_sequence."""
    msg = client.messages.create(model=MODEL, max_tokens=2000, messages=ask(6), stop_sequences=["\n\nAssistant:"])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "\n\nAssistant:"
    assert msg.content[0].text.startswith("User:") and "Assistant:" not in msg.content[0].text


@pytest.mark.parametrize(
    "prefill",
    [
        "User: My bank sent me a letter",
        "User: My bank sent me a letter.\n\nAssistant:",
        "User: My bank sent me a letter.\n\nAssistant: I see.",
        "User: My bank sent me a letter.",
    ],
)
def test_any_prefill_is_completed_into_the_asked_number_of_turns(client, prefill):
    """Whatever block the prefill stops in, prefill + reply is a valid conversation of N messages."""
    reply = client.messages.create(model=MODEL, max_tokens=3000,
                                   messages=[*ask(6), {"role": "assistant", "content": prefill}])
    assert len(turns_of(prefill + reply.content[0].text)) == 6


def test_sandbox_config_converts_and_validates_values():
    """Strings from a CLI or JSON are converted; bad values, unknown names and rates over 1 are refused."""
    from core.llm.sandbox import SandboxConfigError

    config = SandboxConfig().replace(rate_500="0.25", rpm="60", force_status="401", force_message=None)
    assert (config.rate_500, config.rpm, config.force_status) == (0.25, 60, 401)
    assert config.replace(force_status=None).force_status is None
    from_settings = SandboxConfig.from_settings(rpm=5)
    from core.config import get_settings

    assert (from_settings.rpm, from_settings.host) == (5, "127.0.0.1")
    assert from_settings.latency_ms == get_settings().sandbox_latency_ms
    for bad in ({"rate_500": 1.5}, {"nonsense": 1}, {"rpm": -1}, {"fault_rate": 0.6, "rate_500": 0.6},
                {"force_status": 200}, {"tokens_per_s": 0}, {"rpm": "many"}):
        with pytest.raises(SandboxConfigError):
            SandboxConfig().replace(**bad)


def test_a_brief_is_read_with_defaults_and_bounds():
    """Missing brief lines take defaults, Turns is clamped to 2..40, and no lines at all means no brief."""
    from core.llm.sandbox import parse_brief

    brief = parse_brief("Make one.\n- topic: a late train\nTURNS: 99")
    assert brief is not None and brief.topic == "a late train" and brief.turns == 40
    assert brief.persona and brief.emotion
    assert parse_brief("Turns: 1").turns == 2
    assert parse_brief("Just say hello.") is None


def test_rate_limit_buckets_refuse_without_taking_anything():
    """A refused request leaves the buckets as they were; retry-after is the time to refill what it needs."""
    from core.llm.sandbox.limits import RateLimits

    limits = RateLimits(rpm=2, input_tpm=600, output_tpm=0)
    assert limits.admit(100, 50).allowed and limits.admit(100, 50).allowed
    refused = limits.admit(100, 50)
    assert not refused.allowed and refused.limited_by == "requests"
    assert 28.0 < refused.retry_after_s <= 30.0
    assert refused.headers["anthropic-ratelimit-input-tokens-remaining"] in ("400", "401")
    assert "anthropic-ratelimit-output-tokens-limit" not in refused.headers
    limits.configure(rpm=0, input_tpm=600, output_tpm=0)
    too_much = limits.admit(500, 50)
    assert not too_much.allowed and too_much.limited_by == "input_tokens"
    assert 8.0 < too_much.retry_after_s <= 10.0  # 100 tokens short at 10 tokens/s
