"""The sandbox's Message Batches endpoints, over real HTTP, through the real anthropic SDK."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import anthropic
import pytest
from anthropic.types.messages import MessageBatch

from core.llm.sandbox import SandboxServer

MODEL = "claude-sonnet-5-5"
SANDBOX = {"seed": 11, "latency_ms": 0, "tokens_per_s": 1_000_000.0, "batch_processing_s": 0.2}
BRIEF = "Write the conversation.\nPersona: nurse\nEmotion: tired\nTopic: {topic}\nTurns: 2"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=sandbox.base_url, api_key="test-key", max_retries=0, timeout=10.0)
    yield c
    c.close()


def requests(n: int, prefix: str = "item") -> list[dict]:
    return [{"custom_id": f"{prefix}-{i}",
             "params": {"model": MODEL, "max_tokens": 400,
                        "messages": [{"role": "user", "content": BRIEF.format(topic=f"topic {i}")}]}}
            for i in range(n)]


def wait_ended(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    deadline = time.monotonic() + 20
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def outcomes(client: anthropic.Anthropic, batch_id: str) -> dict[str, str]:
    """custom_id -> result type, or the error type for errored results."""
    out = {}
    for line in client.messages.batches.results(batch_id):
        result = line.result
        out[line.custom_id] = result.error.error.type if result.type == "errored" else result.type
    return out


def test_a_batch_moves_from_in_progress_to_ended_with_the_real_fields(client):
    """create answers in_progress with every request processing; once ended it has ended_at, results_url, counts."""
    batch = client.messages.batches.create(requests=requests(3))
    assert (batch.type, batch.processing_status, batch.request_counts.processing) == ("message_batch", "in_progress", 3)
    assert batch.results_url is None and batch.ended_at is None and batch.id.startswith("msgbatch_")
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(24 * 3600)
    ended = wait_ended(client, batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.results_url and ended.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    assert ended.request_counts.model_dump() == {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0,
                                                 "expired": 0}
    lines = list(client.messages.batches.results(batch.id))
    assert [line.custom_id for line in lines] == ["item-0", "item-1", "item-2"]
    message = lines[0].result.message
    assert message.content[0].text.startswith("User:") and message.usage.service_tier == "batch"
    assert message.usage.output_tokens > 0


def test_outcome_shares_follow_the_knobs_and_repeat_for_the_seed(client, sandbox):
    """300 requests at 10 % retryable, 2 % invalid, 5 % expired, 3 % canceled come out near those shares, twice alike."""
    sandbox.configure(batch_error_rate=0.10, batch_invalid_rate=0.02, batch_expired_rate=0.05,
                      batch_canceled_rate=0.03)
    first = outcomes(client, wait_ended(client, client.messages.batches.create(requests=requests(300)).id).id)
    counts = Counter(first.values())
    retryable = counts["overloaded_error"] + counts["api_error"]
    assert 15 <= retryable <= 45 and counts["overloaded_error"] and counts["api_error"]
    assert 1 <= counts["invalid_request_error"] <= 14
    assert 5 <= counts["expired"] <= 28 and 2 <= counts["canceled"] <= 20
    assert counts["succeeded"] == 300 - retryable - counts["invalid_request_error"] - counts["expired"] - counts["canceled"]
    sandbox.reset()
    again = outcomes(client, wait_ended(client, client.messages.batches.create(requests=requests(300)).id).id)
    assert again == first


def test_request_counts_agree_with_the_results(client, sandbox):
    """The ended batch's request_counts are the tally of its result lines by type."""
    sandbox.configure(batch_error_rate=0.2, batch_expired_rate=0.1)
    batch = wait_ended(client, client.messages.batches.create(requests=requests(50)).id)
    tally = Counter(line.result.type for line in client.messages.batches.results(batch.id))
    assert {k: v for k, v in batch.request_counts.model_dump().items() if v} == dict(tally)


def test_errored_results_carry_the_api_error_shape(client, sandbox):
    """An errored line holds {"type": "error", "error": {"type", "message"}}, invalid params included."""
    sandbox.configure(batch_error_rate=1.0)
    broken = {"custom_id": "broken", "params": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}}
    batch = wait_ended(client, client.messages.batches.create(requests=[*requests(4), broken]).id)
    lines = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    assert lines["broken"].error.type == "error"
    assert lines["broken"].error.error.type == "invalid_request_error"
    assert "max_tokens" in lines["broken"].error.error.message
    assert {lines[f"item-{i}"].error.error.type for i in range(4)} <= {"overloaded_error", "api_error"}


def test_a_resubmitted_request_draws_a_new_outcome_and_is_counted(client, sandbox):
    """Errored requests resubmitted in a new batch get fresh draws, some succeed; submissions are counted per custom_id."""
    sandbox.configure(batch_error_rate=0.3)
    first = outcomes(client, wait_ended(client, client.messages.batches.create(requests=requests(100)).id).id)
    failed = {cid for cid, kind in first.items() if kind != "succeeded"}
    assert 10 <= len(failed) <= 50
    retry = [r for r in requests(100) if r["custom_id"] in failed]
    second = outcomes(client, wait_ended(client, client.messages.batches.create(requests=retry).id).id)
    assert 0 < sum(kind == "succeeded" for kind in second.values()) < len(failed)
    counts = sandbox.batch_submissions()
    assert counts == {r["custom_id"]: 2 if r["custom_id"] in failed else 1 for r in requests(100)}
    with urllib.request.urlopen(f"{sandbox.base_url}/_sandbox/batch_requests") as resp:
        assert json.loads(resp.read()) == counts
    assert sandbox.stats()["batch_requests"] == 100 + len(failed)


def test_list_is_newest_first_and_pages_both_ways(client, sandbox):
    """list(limit) pages with has_more; after_id goes to older batches, before_id back to newer ones."""
    sandbox.configure(batch_processing_s=60)
    created = [client.messages.batches.create(requests=requests(1)).id for _ in range(5)]
    newest = created[::-1]
    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == newest[:2] and first.has_more
    assert (first.first_id, first.last_id) == (newest[0], newest[1])
    older = client.messages.batches.list(limit=2, after_id=newest[1])
    assert [b.id for b in older.data] == newest[2:4] and older.has_more
    last = client.messages.batches.list(limit=2, after_id=newest[3])
    assert [b.id for b in last.data] == newest[4:] and not last.has_more
    newer = client.messages.batches.list(limit=2, before_id=newest[3])
    assert [b.id for b in newer.data] == newest[1:3] and newer.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == newest  # the SDK's auto-paging
    assert all(b.processing_status == "in_progress" for b in first.data)


def test_cancel_during_processing_ends_with_the_unreached_requests_canceled(client, sandbox):
    """A cancel half-way answers canceling, then ends with the first part processed and the rest canceled."""
    sandbox.configure(batch_processing_s=2.0)
    batch = client.messages.batches.create(requests=requests(40))
    time.sleep(1.0)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = wait_ended(client, batch.id)
    counts = ended.request_counts
    assert ended.processing_status == "ended" and counts.succeeded + counts.canceled == 40
    assert 0 < counts.succeeded < 40
    kinds = list(outcomes(client, batch.id).values())
    assert kinds == ["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled


def test_an_unknown_batch_is_not_found_and_results_wait_for_the_end(client, sandbox):
    """retrieve of a missing id is NotFoundError; results before the end are refused by the SDK."""
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_missing")
    sandbox.configure(batch_processing_s=60)
    batch = client.messages.batches.create(requests=requests(1))
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)


def test_a_bad_batch_is_refused_at_create(client):
    """Duplicate or malformed custom_ids and an empty request list are a 400 at create."""
    for bad in ([], [*requests(1), *requests(1)], [{"custom_id": "no spaces", "params": {}}]):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.create(requests=bad)


def test_the_async_client_creates_lists_and_streams_results(sandbox):
    """AsyncAnthropic, as the worker uses it: create, list, retrieve until ended, and results line by line."""
    import asyncio

    async def run() -> tuple[list[str], list[str], str]:
        async with anthropic.AsyncAnthropic(base_url=sandbox.base_url, api_key="k", max_retries=0) as client:
            batch = await client.messages.batches.create(requests=requests(3))
            listed = [b.id async for b in client.messages.batches.list(limit=1)]
            while (await client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                await asyncio.sleep(0.05)
            lines = [line.custom_id async for line in await client.messages.batches.results(batch.id)]
            return listed, lines, batch.id

    listed, lines, batch_id = asyncio.run(run())
    assert listed == [batch_id] and lines == ["item-0", "item-1", "item-2"]
