"""An item commit counts its conversation and its usage once, however it is replayed."""

from __future__ import annotations

import sqlalchemy as sa

from core.batches import checkpoints
from core.batches.leases import claim_batch, claim_items
from core.batches.service import create_batch
from core.generation import Conversation, GenerationParams, GenerationResult
from core.generation.models import Turn
from core.llm import LLMResult, Usage
from core.store.schema import batch_jobs, conversations


def _result() -> GenerationResult:
    usage = Usage(input_tokens=100, output_tokens=50)
    llm = LLMResult(text="", usage=usage, cost_usd=0.01, request_id="req_1", model="claude-sonnet-5-5",
                    stop_reason="end_turn", attempts=1)
    conversation = Conversation("system", [Turn("user", "Hi"), Turn("assistant", "Hello")])
    params = GenerationParams("customer_support", "a student", "calm", "refunds", 2)
    return GenerationResult(conversation, llm, params, "", usage, 0.01)


def test_a_commit_retried_after_its_acknowledgement_was_lost_adds_usage_once(engine, monkeypatch):
    """run_db re-running an item commit that already landed leaves one conversation and one usage."""
    batch_id = create_batch(engine, template="customer_support", count=1, turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, batch_id, "w1", 1)

    def run_twice(fn):  # the first COMMIT lands, its acknowledgement is "lost", the retry runs again
        fn()
        return fn()

    monkeypatch.setattr(checkpoints, "run_db", run_twice)
    checkpoints.commit_item(engine, item, _result())

    with engine.connect() as conn:
        tokens = conn.execute(sa.select(batch_jobs.c.input_tokens, batch_jobs.c.output_tokens)).one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one()
    assert rows == 1
    assert tuple(tokens) == (100, 50)


CONV_ID = "0f8b6c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f"


def test_a_result_saved_again_under_its_own_id_adds_usage_once(engine):
    """A worker saving a held result again after a lost acknowledgement reuses its id: one row, usage once."""
    batch_id = create_batch(engine, template="customer_support", count=1, turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, batch_id, "w1", 1)

    assert checkpoints.commit_item(engine, item, _result(), conversation_id=CONV_ID) is True
    # the first one's ack was "lost": saved again, recognised as already done
    assert checkpoints.commit_item(engine, item, _result(), conversation_id=CONV_ID) is False

    with engine.connect() as conn:
        tokens = conn.execute(sa.select(batch_jobs.c.input_tokens, batch_jobs.c.output_tokens)).one()
        ids = conn.execute(sa.select(conversations.c.id)).scalars().all()
    assert ids == [CONV_ID]
    assert tuple(tokens) == (100, 50)
