"""The optional LLM judge against the sandbox: a valid answer is stored, a malformed or failing one is "failed"."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE

from core.batches import checkpoints
from core.batches.leases import claim_batch, claim_items
from core.batches.service import create_batch
from core.errors import NotFoundError
from core.generation import Conversation, GenerationParams, GenerationResult
from core.generation.models import Turn
from core.llm.client import LLMResult, Usage
from core.llm.loops import run_sync
from core.quality import RUBRIC, ajudge, judge_conversation
from core.store.schema import batch_jobs, conversations

SANDBOX = {"seed": 9, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = UNLIMITED_RATE

TURNS = [{"role": "user", "content": "I'm frustrated, my wifi keeps dropping. I'm a retired teacher."},
         {"role": "assistant", "content": "Restart the router first, then check whether the phone drops too."}]
PARAMS = {"persona": "a retired teacher", "emotion": "frustrated", "topic": "my wifi keeps dropping"}


def _saved_conversation(engine) -> tuple[str, str]:
    """A batch with one committed conversation: (batch id, conversation id)."""
    bid = create_batch(engine, template="tech_troubleshooting", rows=[PARAMS], turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, bid, "w1", 1)
    usage = Usage(input_tokens=10, output_tokens=5)
    llm = LLMResult(text="", usage=usage, cost_usd=0.001, request_id="r", model="claude-sonnet-5-5",
                    stop_reason="end_turn", attempts=1)
    result = GenerationResult(Conversation("system", [Turn(t["role"], t["content"]) for t in TURNS]), llm,  # type: ignore[arg-type]
                              GenerationParams("tech_troubleshooting", *PARAMS.values(), 2), "", usage, 0.001)
    checkpoints.commit_item(engine, item, result)
    with engine.connect() as conn:
        return bid, conn.execute(sa.select(conversations.c.id)).scalar_one()


def test_a_valid_judge_answer_is_stored_with_its_cost_apart(engine, sandbox):
    """The sandbox's JSON gives a reason and 1-5 score per criterion; the cost is judge cost, on both rows."""
    bid, conv_id = _saved_conversation(engine)
    judgement = judge_conversation(engine, conv_id)
    assert judgement.status == "ok" and judgement.calls == 1
    assert set(judgement.scores) == set(RUBRIC) and all(1 <= v <= 5 for v in judgement.scores.values())
    assert all(judgement.reasons[k] for k in RUBRIC)
    with engine.connect() as conn:
        row = conn.execute(sa.select(conversations.c.judge, conversations.c.judge_status,
                                     conversations.c.judge_cost_usd, conversations.c.cost_usd)).one()
        batch_judge = conn.execute(sa.select(batch_jobs.c.judge_cost_usd).where(batch_jobs.c.id == bid)).scalar_one()
    assert row.judge_status == "ok" and row.judge["scores"] == judgement.scores
    assert row.judge_cost_usd == pytest.approx(judgement.cost_usd) and judgement.cost_usd > 0
    assert batch_judge == pytest.approx(judgement.cost_usd)
    assert row.cost_usd == pytest.approx(0.001)  # generation cost untouched


def test_malformed_judge_answers_are_retried_then_marked_failed(sandbox, monkeypatch):
    """Every answer cut short: asked 1 + retries times, each paid, then "failed" saying why; nothing raises."""
    from core.config import override_settings

    override_settings(quality_judge_invalid_retries=2)
    sandbox.configure(rate_invalid_conversation=1.0)
    judgement = run_sync(ajudge(TURNS, PARAMS))
    assert (judgement.status, judgement.calls) == ("failed", 3)
    assert "not the JSON asked for 3 times" in judgement.error and "not JSON" in judgement.error
    assert judgement.cost_usd > 0 and judgement.scores == {}


def test_a_judge_call_that_fails_is_marked_failed_and_stored(engine, sandbox):
    """A refused call (400, not retried) gives a "failed" judgement stored on the conversation, not an exception."""
    _, conv_id = _saved_conversation(engine)
    sandbox.configure(force_status=400, force_message="bad request")
    judgement = judge_conversation(engine, conv_id)
    assert judgement.status == "failed" and "could not be reached" in judgement.error
    with engine.connect() as conn:
        status = conn.execute(sa.select(conversations.c.judge_status)).scalar_one()
    assert status == "failed"


def test_judging_a_conversation_nobody_may_see_is_not_found(engine):
    """An unknown id answers as not found, before any model call."""
    with pytest.raises(NotFoundError):
        judge_conversation(engine, "00000000-0000-0000-0000-000000000000")


def test_a_template_that_asks_for_the_judge_gets_its_batch_conversations_judged(engine, sandbox):
    """judge: true on the version: each committed conversation carries its judgement; the batch sums judge cost."""
    import asyncio
    import dataclasses

    from core.batches.worker import BatchWorker
    from core.quality import reset_shared_indexes
    from core.templates.builtin import BUILTINS
    from core.templates.store import save_template

    save_template(engine, "judged_support", dataclasses.replace(BUILTINS["tech_troubleshooting"].content, judge=True))
    bid = create_batch(engine, template="judged_support", rows=[PARAMS, {**PARAMS, "emotion": "anxious"}], turns=4)
    plain = create_batch(engine, template="tech_troubleshooting", rows=[PARAMS], turns=4)
    reset_shared_indexes()
    assert asyncio.run(BatchWorker(engine, concurrency=2).run(once=True)) == 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(conversations.c.batch_id, conversations.c.judge_status,
                                      conversations.c.judge, conversations.c.judge_cost_usd)).all()
        batch_judge = dict(conn.execute(sa.select(batch_jobs.c.id, batch_jobs.c.judge_cost_usd)).all())
    judged = [r for r in rows if r.batch_id == bid]
    assert len(judged) == 2 and all(r.judge_status == "ok" and set(r.judge["scores"]) == set(RUBRIC)
                                    for r in judged)
    assert batch_judge[bid] == pytest.approx(sum(r.judge_cost_usd for r in judged)) and batch_judge[bid] > 0
    [unjudged] = [r for r in rows if r.batch_id == plain]
    assert (unjudged.judge_status, unjudged.judge_cost_usd, batch_judge[plain]) == (None, 0.0, 0.0)


def test_a_single_generation_of_a_judged_template_is_judged(engine, sandbox):
    """A draft of a judge: true version finishes with its judgement stored on the conversation."""
    import dataclasses

    from people import person

    from core.auth import acting_as
    from core.drafts import start_draft
    from core.templates.builtin import BUILTINS
    from core.templates.store import save_template

    save_template(engine, "judged_single", dataclasses.replace(BUILTINS["tech_troubleshooting"].content, judge=True))
    ana = person(engine, "ana@example.com")
    with acting_as(ana):
        draft = start_draft(engine, GenerationParams("judged_single", *PARAMS.values(), 4))
        draft.run()
    with engine.connect() as conn:
        row = conn.execute(sa.select(conversations.c.judge_status, conversations.c.judge_cost_usd).where(
            conversations.c.id == draft.conversation_id)).one()
    assert row.judge_status == "ok" and row.judge_cost_usd > 0


def test_a_batch_created_with_the_judge_on_is_judged_though_its_template_does_not_ask(engine, sandbox):
    """judge=True on one batch: its conversations carry judgements; another batch of the same template has none."""
    import asyncio

    from core.batches.worker import BatchWorker
    from core.quality import reset_shared_indexes

    judged_batch = create_batch(engine, template="tech_troubleshooting", rows=[PARAMS], turns=4, judge=True)
    plain = create_batch(engine, template="tech_troubleshooting", rows=[{**PARAMS, "emotion": "anxious"}], turns=4)
    reset_shared_indexes()
    assert asyncio.run(BatchWorker(engine, concurrency=2).run(once=True)) == 0
    with engine.connect() as conn:
        status = dict(conn.execute(sa.select(conversations.c.batch_id, conversations.c.judge_status)).all())
    assert status == {judged_batch: "ok", plain: None}
