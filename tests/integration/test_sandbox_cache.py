"""Prompt caching in the sandbox: cache_control writes a prefix once and reads it after, over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import pytest

from core.llm.pricing import get_model
from core.llm.sandbox import SandboxServer, request_input_tokens

MODEL = "claude-sonnet-5-5"
SANDBOX = {"seed": 5, "latency_ms": 0, "tokens_per_s": 1_000_000.0, "batch_processing_s": 0.1}
MIN = get_model(MODEL)[0].cache_min_tokens
LONG = "You write realistic support conversations between a customer and an agent. " * (MIN // 15 + 10)
ASK = [{"role": "user", "content": "Write the conversation.\nTopic: a late parcel\nTurns: 2"}]


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=sandbox.base_url, api_key="test-key", max_retries=0, timeout=10.0)
    yield c
    c.close()


def system(text: str = LONG, **control: str) -> list[dict]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral", **control}}]


def call(client: anthropic.Anthropic, sys: list[dict], messages: list[dict] = ASK, stream: bool = False):
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=300, system=sys, messages=messages) as s:
            return s.get_final_message().usage
    return client.messages.create(model=MODEL, max_tokens=300, system=sys, messages=messages).usage


def test_a_long_system_prompt_is_written_once_then_read(client):
    """The first call creates the cache with the prefix's tokens, the next reads them; input_tokens is the rest."""
    total = request_input_tokens(LONG, ASK)
    prefix = request_input_tokens(LONG, [])  # the system prompt alone
    first, second = call(client, system()), call(client, system(), stream=True)
    assert first.cache_creation_input_tokens == prefix >= MIN and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.input_tokens == total - prefix
    assert (second.cache_read_input_tokens, second.cache_creation_input_tokens) == (prefix, 0)
    assert second.input_tokens == total - prefix


def test_a_prompt_below_the_minimum_is_not_cached(client):
    """A marked prefix shorter than the model's cache_min_tokens is neither written nor read."""
    short = system("Be brief. " * 10)
    for _ in range(2):
        usage = call(client, short)
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
        assert usage.input_tokens == request_input_tokens("Be brief. " * 10, ASK)


def test_without_cache_control_nothing_is_cached(client):
    """The same long prompt as a plain string is billed in full every time."""
    for _ in range(2):
        usage = client.messages.create(model=MODEL, max_tokens=300, system=LONG, messages=ASK).usage
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


def test_each_ttl_has_its_own_entry_and_a_different_prefix_misses(client):
    """A 1-hour write is counted as such and does not serve the 5-minute entry; another prefix writes anew."""
    hour = call(client, system(ttl="1h"))
    assert hour.cache_creation.ephemeral_1h_input_tokens == hour.cache_creation_input_tokens > 0
    assert call(client, system()).cache_creation.ephemeral_5m_input_tokens > 0
    assert call(client, system(ttl="1h")).cache_read_input_tokens > 0
    other = call(client, system(LONG + " Always be kind."))
    assert other.cache_read_input_tokens == 0 and other.cache_creation_input_tokens > 0


def test_an_entry_expires_after_its_ttl_since_last_use(client, sandbox):
    """With a short 5-minute life, a read after it has lapsed writes the prefix again."""
    sandbox.configure(cache_ttl_5m_s=0.3)
    assert call(client, system()).cache_creation_input_tokens > 0
    assert call(client, system()).cache_read_input_tokens > 0
    time.sleep(0.4)
    assert call(client, system()).cache_creation_input_tokens > 0


def test_a_later_breakpoint_reads_the_shared_part_and_writes_the_rest(client):
    """Two breakpoints: a conversation turn after the cached system prompt reads it and writes only its own part."""
    call(client, system())
    turn = [{"role": "user", "content": [{"type": "text", "text": "Earlier notes. " * 400,
                                          "cache_control": {"type": "ephemeral"}}]}]
    usage = call(client, system(), turn)
    prefix = request_input_tokens(LONG, [])
    assert usage.cache_read_input_tokens == prefix
    assert usage.cache_creation_input_tokens == request_input_tokens(LONG, turn) - prefix


def test_more_than_four_breakpoints_are_refused(client):
    """Five cache_control blocks are a 400, as the API answers."""
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        call(client, blocks)


def test_batch_requests_share_the_cache_in_order(client):
    """In a batch of requests with the same cached system prompt, the first writes it and the others read it."""
    reqs = [{"custom_id": f"c-{i}", "params": {"model": MODEL, "max_tokens": 300, "system": system(ttl="1h"),
                                              "messages": [{"role": "user", "content": f"Topic: parcel {i}"}]}}
            for i in range(4)]
    batch = client.messages.batches.create(requests=reqs)
    deadline = time.monotonic() + 10
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    usages = [line.result.message.usage for line in client.messages.batches.results(batch.id)]
    assert usages[0].cache_creation.ephemeral_1h_input_tokens > 0 and usages[0].cache_read_input_tokens == 0
    assert all(u.cache_read_input_tokens == usages[0].cache_creation_input_tokens for u in usages[1:])
    assert all(u.service_tier == "batch" for u in usages)


def test_cache_reads_do_not_count_against_the_input_token_limit(client, sandbox):
    """Under an input limit that fits one full prompt, the next calls that read it from the cache still go through."""
    total = request_input_tokens(LONG, ASK)
    sandbox.configure(input_tpm=total + total // 2)
    assert call(client, system()).cache_creation_input_tokens > 0
    for _ in range(3):
        assert call(client, system()).cache_read_input_tokens > 0
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=300, system=LONG, messages=ASK)  # uncached: the full prompt
