"""Prompt caching in generation: the request's breakpoint, and cache usage recorded and priced on each conversation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from batch_support import run_worker_here, worker_env

from core.batches.service import create_batch, get_batch_status
from core.errors import AppError, ErrorCode
from core.generation import GenerationParams
from core.generation.request import item_request
from core.llm.pricing import get_model, price
from core.store.schema import batch_jobs, conversations
from core.templates import TemplateContent
from core.templates.store import save_template

SANDBOX = {"seed": 9, "latency_ms": 0, "tokens_per_s": 200_000.0}
MODEL = "claude-sonnet-5-5"
MANUAL = "You are a claims handler at Harbor Mutual; follow the claims manual to the letter. " * 60


def _template(engine, slug: str, system_prompt: str) -> None:
    save_template(engine, slug, TemplateContent(
        title="Claims", description="A policyholder reports a claim.", system_prompt=system_prompt,
        user_template="The policyholder is {persona}, feels {emotion} and calls about {topic}.",
        variables={"persona": ("a farmer", "a nurse"), "emotion": ("worried", "calm"),
                   "topic": ("a flooded barn", "a stolen bike")}, model=MODEL))


def test_a_long_system_prompt_gets_a_breakpoint_and_nothing_variable_before_it(engine, sandbox):
    """Past the model's minimum the system prompt is one cached block, the same for every item; the item's values follow it."""
    _template(engine, "claims_long", MANUAL)
    first = item_request(GenerationParams(template="claims_long", persona="a farmer", emotion="calm", topic="hail", turns=2))
    other = item_request(GenerationParams(template="claims_long", persona="a nurse", emotion="worried", topic="fire", turns=2),
                         mode="message_batches")
    assert first.prefix.tokens >= get_model(MODEL)[0].cache_min_tokens and first.cached
    assert first.params()["system"] == [{"type": "text", "text": MANUAL.strip(), "cache_control": {"type": "ephemeral"}}]
    assert other.params()["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert other.params()["system"][0]["text"] == first.params()["system"][0]["text"]
    assert "a farmer" in first.params()["messages"][0]["content"] and "a farmer" not in MANUAL
    assert (first.params()["model"], first.params()["max_tokens"]) == (MODEL, first.max_tokens)


def test_a_short_system_prompt_goes_as_plain_text(engine, sandbox):
    """Below the model's minimum cacheable length the system prompt is sent as a string, without a breakpoint."""
    _template(engine, "claims_short", "You are a claims handler.")
    request = item_request(GenerationParams(template="claims_short", persona="a farmer", emotion="calm", topic="hail", turns=2))
    assert not request.cached and request.params()["system"] == "You are a claims handler."
    assert "below the" in request.prefix.text()


def test_an_online_batch_records_cache_writes_then_reads_and_prices_them(engine, sandbox, monkeypatch):
    """One at a time, the first conversation writes the prompt to the cache and the rest read it; cost includes both."""
    _template(engine, "claims_cached", MANUAL)
    batch_id = create_batch(engine, template="claims_cached", count=4, turns=2, concurrency=1)
    run_worker_here(monkeypatch, worker_env(sandbox.base_url), concurrency=1)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(conversations).where(conversations.c.batch_id == batch_id)
                            .order_by(conversations.c.created_at)).mappings().all()
        job = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == batch_id)).mappings().one()
    assert len(rows) == 4 and {r["mode"] for r in rows} == {"online"}
    written = [r["cache_creation_tokens"] for r in rows]
    read = [r["cache_read_tokens"] for r in rows]
    assert written[0] > 0 and written[1:] == [0, 0, 0]
    assert read == [0, written[0], written[0], written[0]]
    for row in rows:
        usage = {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
                 "cache_read_input_tokens": row["cache_read_tokens"],
                 "cache_creation_input_tokens": row["cache_creation_tokens"]}
        assert row["cost_usd"] == price(MODEL, usage).total > 0
    assert (job["cache_read_tokens"], job["cache_creation_tokens"]) == (sum(read), sum(written))
    assert job["cost_usd"] == sum(r["cost_usd"] for r in rows)
    status = get_batch_status(engine, batch_id)
    assert (status["cache_read_tokens"], status["cache_creation_tokens"]) == (sum(read), sum(written))
    assert sandbox.stats()["cache_read_input_tokens"] == sum(read)


def test_a_failed_count_falls_back_to_the_estimate_once_per_process(sandbox):
    """A service that does not count (a proxy without the endpoint) is asked once; the estimate decides after."""
    from core.llm.client import ClaudeClient
    from core.llm.loops import run_sync
    from core.templates.tokens import PrefixTokens, acached_system_prompt_tokens

    no_counts = ClaudeClient(provider="endpoint", base_url=sandbox.base_url + "/no-such-proxy-path", api_key="k")
    estimate = PrefixTokens(tokens=2000, model=MODEL, cache_min_tokens=1024, provider="estimate")

    async def count(prompt: str, fallback: PrefixTokens | None = estimate) -> PrefixTokens:
        return await acached_system_prompt_tokens(prompt, MODEL, client=no_counts, component="test", fallback=fallback)

    prompt = "A prompt counted nowhere else. " + MANUAL  # counts are remembered per process
    before = sum(sandbox.stats()["by_status"].values())
    assert run_sync(count(prompt)) == estimate and run_sync(count(prompt)) == estimate
    assert sum(sandbox.stats()["by_status"].values()) - before <= 1
    assert "estimated here" in estimate.text()
    with pytest.raises(AppError):
        run_sync(count(prompt + ".", None))


def test_a_rejected_key_on_the_count_is_raised_not_estimated(sandbox):
    """A 401 on the count would be the call's too: it is raised (one error, not a count error and a call error)."""
    from core.llm.client import ClaudeClient
    from core.llm.loops import run_sync
    from core.templates.tokens import PrefixTokens, acached_system_prompt_tokens

    sandbox.configure(api_key_required="the-right-key")
    refused = ClaudeClient(provider="endpoint", base_url=sandbox.base_url, api_key="a-wrong-key")
    estimate = PrefixTokens(tokens=2000, model=MODEL, cache_min_tokens=1024, provider="estimate")
    with pytest.raises(AppError) as info:
        run_sync(acached_system_prompt_tokens("Another prompt. " + MANUAL, MODEL, client=refused, component="test",
                                              fallback=estimate))
    assert info.value.code == ErrorCode.AUTHENTICATION_FAILED


def test_a_single_streamed_generation_records_its_cache_use_on_its_conversation(engine, sandbox):
    """A draft run twice on a long prompt: the first conversation wrote the cache, the second read it, both priced so."""
    from people import person

    from core.auth import acting_as
    from core.drafts import start_draft

    _template(engine, "claims_draft", MANUAL)
    params = GenerationParams(template="claims_draft", persona="a farmer", emotion="calm", topic="hail", turns=2)
    ana = person(engine, "ana@example.com")
    with acting_as(ana):
        ids = [start_draft(engine, params) for _ in range(2)]
        for draft in ids:
            draft.run(on_delta=lambda _piece: None)
    with engine.connect() as conn:
        rows = [conn.execute(sa.select(conversations).where(conversations.c.draft_id == d.id)).mappings().one()
                for d in ids]
    assert rows[0]["cache_creation_tokens"] > 0 and rows[0]["cache_read_tokens"] == 0
    assert rows[1]["cache_read_tokens"] == rows[0]["cache_creation_tokens"] and rows[1]["cache_creation_tokens"] == 0
    assert rows[1]["cost_usd"] < rows[0]["cost_usd"] and {r["mode"] for r in rows} == {"online"}
