"""An item commit counts its conversation and its usage once, however it is replayed."""

from __future__ import annotations

import sqlalchemy as sa

from core.batches import checkpoints
from core.batches.leases import claim_batch, claim_items
from core.batches.service import create_batch
from core.generation import Conversation, GenerationParams, GenerationResult
from core.generation.models import Turn
from core.llm.client import LLMResult, Usage
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


def _expire_claims(engine, batch_id: str) -> None:
    """The batch lease and its item claims run out, as if their worker had been silent for a lease period."""
    from datetime import timedelta

    from core.store.schema import batch_items, utcnow
    from core.store.tx import write_tx

    past = utcnow() - timedelta(hours=1)
    with write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(lease_expires_at=past))
        conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id).values(claimed_at=past))


def test_a_late_commit_onto_an_item_failed_as_worker_lost_completes_the_finalized_batch(engine):
    """A stopped worker's reply saved after the sweep failed its item and the batch: item done, batch completed."""
    from core.batches.service import get_batch_status, resume_batch
    from core.config import override_settings

    override_settings(item_max_lost_attempts=1)
    batch_id = create_batch(engine, template="customer_support", count=2, turns=2)
    claim_batch(engine, "stopped")
    [late, _] = claim_items(engine, batch_id, "stopped", 2)
    _expire_claims(engine, batch_id)
    claim_batch(engine, "next")  # its sweep fails both as worker_lost (their last attempt)
    assert checkpoints.finalize_batch(engine, batch_id) == "failed"
    assert get_batch_status(engine, batch_id)["failed"] == 2

    assert checkpoints.commit_item(engine, late, _result()) is True
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"], st["failed"]) == ("failed", 1, 1)
    assert "1 of 2 items failed" in st["status_reason"]  # the reason names the count the items say

    [other] = claim_items(engine, batch_id, "next", 1) or [None]
    assert other is None  # a failed batch hands out nothing until a resume
    assert resume_batch(engine, batch_id, failed_only=True) == 1  # Retry failed finds the one that is failed
    claim_batch(engine, "next")
    [retry] = claim_items(engine, batch_id, "next", 1)
    assert checkpoints.commit_item(engine, retry, _result()) is True
    assert checkpoints.finalize_batch(engine, batch_id) == "completed"

    # and the other way round: the last late result onto a failed batch completes it
    batch_id = create_batch(engine, template="customer_support", count=1, turns=2)
    claim_batch(engine, "stopped")
    [late] = claim_items(engine, batch_id, "stopped", 1)
    _expire_claims(engine, batch_id)
    claim_batch(engine, "next")
    assert checkpoints.finalize_batch(engine, batch_id) == "failed"
    assert checkpoints.commit_item(engine, late, _result()) is True
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"], st["failed"], st["status_reason"]) == ("completed", 1, 0, None)
    assert st["finished_at"] is not None


def test_a_reply_arriving_after_a_cancel_is_kept_and_the_batch_stays_cancelled(engine):
    """An item in flight at Cancel is skipped at once; its reply, when it lands, makes it done and saves it once."""
    from core.batches.service import cancel_batch, get_batch_status

    batch_id = create_batch(engine, template="customer_support", count=2, turns=2)
    claim_batch(engine, "w1")
    [in_flight] = claim_items(engine, batch_id, "w1", 1)
    assert cancel_batch(engine, batch_id) == 2
    assert checkpoints.commit_item(engine, in_flight, _result()) is True
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"], st["skipped"], st["running"]) == ("cancelled", 1, 1, 0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one() == 1
