"""Item outcomes: each commits the item's status, its conversation and the batch's usage in ONE transaction.

The conversation row is unique on (batch_id, item_index): if a replay (a worker that died
after its commit, or two workers racing for an item reset from a dead one) inserts it
again, the insert does nothing and the item simply counts as done — never twice.

Batch guarantees (the rule for results that arrive late):

- The items are the only record of progress. Done, failed, pending, running and skipped
  counts, progress and the batch's final state are computed from `batch_items` whenever
  they are needed, in the transaction that needs them; no counter copy is kept by hand
  (`recovery_checkpoints` holds no batch rows). The token and cost totals on `batch_jobs`
  are not a copy: they are the ledger of what was paid, replays included, written in the
  same transaction as the item whose reply was paid for.
- A late result is accepted and reconciled, not rejected. A worker that lost its claim
  (stopped past its lease, cut off from the database, or its batch was cancelled) may
  still hold a finished, paid-for conversation. Rejecting it, as a stale task token is
  rejected, would throw a valid reply away and pay for it again on the retry; because a
  conversation is keyed (batch_id, item_index) there is nothing to protect by refusing
  it. So a conversation for an item that is not done yet is saved and the item becomes
  done, whatever state a sweep or a cancel left it in (pending, running under another
  worker's claim, failed as `worker_lost`, skipped), and in the same transaction — the
  batch row locked first — the batch's state is derived again from its items: a batch that
  had been finalized as failed becomes completed when no failed item is left, or names the
  new count of failed items. A worker that claims the item again later finds it done, and
  its own reply is a replay that saves nothing.
- A late failure changes nothing: `record_item_failure` applies only to the claim it came
  from (same worker, same attempt, still running) and otherwise reports "superseded".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from core.batches.leases import ClaimedItem, requeued_status
from core.config import Settings, get_settings
from core.errors import AppError
from core.quality import (
    ACCEPTED,
    NEEDS_REVIEW,
    REGENERATE,
    assess,
    find_duplicate,
    gate_values,
    route,
    shared_index,
    thresholds,
)
from core.resilience import run_db
from core.store.dialect import is_sqlite
from core.store.schema import batch_items, batch_jobs, conversations, utcnow
from core.store.tx import write_tx

if TYPE_CHECKING:
    from core.generation import GenerationResult
    from core.quality import Judgement

__all__ = [
    "commit_item",
    "fail_batch",
    "finalize_batch",
    "pause_for_breaker",
    "pause_for_budget",
    "record_item_failure",
    "resume_after_breaker",
]


# The item commit runs once per conversation, so its statements are built once and executed
# with bound values (building and cache-keying them per call cost more than the SQL itself).
_P = sa.bindparam
# NOT EXISTS: a transaction retried after its COMMIT reached the server (the acknowledgement
# was lost) finds its own conversation row and does not add the same usage twice.
_ADD_USAGE = batch_jobs.update().where(
    batch_jobs.c.id == _P("b_batch"),
    ~sa.exists().where(conversations.c.id == _P("b_conv"))).values(
    input_tokens=batch_jobs.c.input_tokens + _P("b_in", type_=sa.BigInteger()),
    output_tokens=batch_jobs.c.output_tokens + _P("b_out", type_=sa.BigInteger()),
    cost_usd=batch_jobs.c.cost_usd + _P("b_cost", type_=sa.Float()),
    judge_cost_usd=batch_jobs.c.judge_cost_usd + _P("b_judge", type_=sa.Float()),
    cache_read_tokens=batch_jobs.c.cache_read_tokens + _P("b_cache_read", type_=sa.BigInteger()),
    cache_creation_tokens=batch_jobs.c.cache_creation_tokens + _P("b_cache_write", type_=sa.BigInteger()),
    updated_at=_P("b_now")
).returning(batch_jobs.c.status, batch_jobs.c.owner_id)
_CONVERSATION_ID = sa.select(conversations.c.id).where(conversations.c.batch_id == _P("b_batch"),
                                                       conversations.c.item_index == _P("b_index"))
_MARK_DONE = batch_items.update().where(batch_items.c.id == _P("b_item"), batch_items.c.status != "done").values(
    status="done", conversation_id=_P("b_conv"), updated_at=_P("b_now"))  # claimed_by stays: who did it
# a batch's conversations are its owner's, whoever (worker, late result) saves them
_BATCH_OWNER = sa.select(batch_jobs.c.owner_id).where(batch_jobs.c.id == _P("b_batch")).scalar_subquery()
_INSERTS: dict[str, Any] = {}


def _insert_conversation(conn: Connection) -> Any:
    """INSERT ... ON CONFLICT (batch_id, item_index) DO NOTHING RETURNING id, in each dialect's own insert()."""
    name = conn.dialect.name
    if name not in _INSERTS:
        insert = sqlite.insert if is_sqlite(conn) else postgresql.insert
        # RETURNING says whether the row went in: psycopg reports rowcount -1 for this statement
        _INSERTS[name] = (insert(conversations).values(owner_id=_BATCH_OWNER)
                          .on_conflict_do_nothing(index_elements=["batch_id", "item_index"])
                          .returning(conversations.c.id))
    return _INSERTS[name]


def commit_item(engine: Engine, item: ClaimedItem, result: GenerationResult, *,
                conversation_id: str | None = None, judgement: Judgement | None = None) -> bool:
    """Save an item's conversation and mark it done; False if it was already done (a replay) or it regenerates.

    Accepted whatever claim it came from (see the module docstring): a late result onto an
    item a sweep failed or a cancel skipped makes it done, and a finalized batch is reconciled.

    `conversation_id`: the same id each time the same result is saved again (a caller that
    retries after run_db gave up), so a commit whose acknowledgement was lost is recognised
    and its usage not added twice. None: a new id, fixed across run_db's own retries.

    The conversation is the batch's owner's, read from the batch row in the statement that adds the
    usage (the worker acts for the owner too, so the errors it records are theirs).

    The quality gate runs in the same transaction (core.quality): the conversation is stored with
    its checks, score, fingerprints, duplicate and review status. One that routing sends back is
    not stored: its item goes back to pending as a new attempt (`regenerations` + 1, its usage
    added), while the item's regenerations stay under settings.quality_max_regenerations, the
    batch is running (or paused) and this claim still holds; otherwise it is stored as needs_review.
    `judgement`: the optional LLM judge's (core.quality.judge), stored with it; its cost is added to
    the batch's judge cost, apart from generation.
    """
    usage = result.usage
    turns = [{"role": t.role, "content": t.content} for t in result.conversation.turns]
    params = item.params
    # fixed across retries of _commit, so a retry can recognise its own earlier commit
    conversation_id = conversation_id or str(uuid.uuid4())
    settings = get_settings()
    assessment = assess(turns, params, settings)  # pure: outside the transaction
    accept, review = thresholds(params, engine, settings)
    store_index = shared_index(engine)
    judge_cost = judgement.cost_usd if judgement else 0.0

    def _commit() -> bool:
        now = utcnow()
        keys = {"b_batch": item.batch_id, "b_index": item.item_index, "b_now": now}
        index = store_index.prepare(item.batch_id)
        with write_tx(engine) as conn:
            duplicate = find_duplicate(conn, assessment, batch_id=item.batch_id, index=index,
                                       exclude_id=conversation_id, settings=settings)
            status = route(assessment, duplicate, settings, accept=accept, review=review)
            if status == REGENERATE:
                regenerated = _regenerate(conn, item, result, now, settings, judge_cost)
                if regenerated is not None:
                    return False
                status = NEEDS_REVIEW  # out of regenerations, or a late result: a reviewer decides
            # tokens were spent either way (the item counts once, below). The batch row is locked
            # first, as in every transaction that touches a batch and its items, so none deadlock.
            # no row: this very conversation was saved before (a retry after a lost COMMIT acknowledgement)
            batch_status, owner_id = conn.execute(_ADD_USAGE, {
                **keys, "b_in": usage.input_tokens, "b_out": usage.output_tokens, "b_cost": result.cost_usd,
                "b_judge": judge_cost, "b_cache_read": usage.cache_read_input_tokens,
                "b_cache_write": usage.cache_creation_input_tokens,
                "b_conv": conversation_id}).first() or (None, None)
            fresh = conn.execute(_insert_conversation(conn), {
                "b_batch": item.batch_id, "id": conversation_id, "batch_id": item.batch_id, "item_index": item.item_index,
                "draft_id": None, "template": params.get("template", ""),
                "model": result.llm.model or params.get("model") or "", "params": params,
                "system_prompt": result.conversation.system_prompt, "turns": turns, "turn_count": len(turns),
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cost_usd": result.cost_usd, "status": "ok", "created_by": None, "owner_id": owner_id,
                "created_at": now, "mode": result.mode, "cache_read_tokens": usage.cache_read_input_tokens,
                "cache_creation_tokens": usage.cache_creation_input_tokens,
                "last_error": None, "error_count": result.invalid_attempts, "last_error_at": None,
                "is_recovering": False, "recovery_attempts": 0, "original_conversation_id": None,
                **gate_values(assessment, duplicate, status, settings),
                "judge": judgement.to_json() if judgement else None,
                "judge_status": judgement.status if judgement else None, "judge_cost_usd": judge_cost,
            }).first() is not None
            saved_id = conversation_id if fresh else conn.execute(_CONVERSATION_ID, keys).scalar_one()
            newly_done = conn.execute(_MARK_DONE, {**keys, "b_item": item.id, "b_conv": saved_id}
                                      ).rowcount == 1
            if newly_done and batch_status == "failed":
                # a late result onto a batch already finalized: its state follows its items again
                _derive_final_state(conn, item.batch_id, now, from_status="failed")
            if fresh:
                index.add(conversation_id, assessment.signature, accepted=status == ACCEPTED,
                          batch_id=item.batch_id)
            return fresh and newly_done

    return run_db(_commit)


def _regenerate(conn: Connection, item: ClaimedItem, result: GenerationResult, now: datetime,
                settings: Settings, judge_cost: float) -> str | None:
    """Send the item back to pending as a new attempt, its usage added; None if it cannot (then it is stored).

    "requeued": done now. "already": a retry of a transaction whose COMMIT landed (the item's
    regenerations moved past this claim's), so nothing is added twice. None: out of
    regenerations, the batch is finalized or cancelled, or this claim was lost: the conversation
    is stored for review instead, as any late result is.
    """
    if item.regenerations >= settings.quality_max_regenerations:
        return None
    # the batch row first (the one lock order), then the item
    batch_status = conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == item.batch_id)
                                .with_for_update()).scalar()
    if batch_status not in ("running", "paused"):  # a paused batch claims its pending items again on resume
        return None
    this_claim = [batch_items.c.id == item.id, batch_items.c.status == "running",
                  batch_items.c.regenerations == item.regenerations, batch_items.c.attempts == item.attempts]
    if item.claimed_by is not None:
        this_claim.append(batch_items.c.claimed_by == item.claimed_by)
    if conn.execute(batch_items.update().where(*this_claim).values(
            status=requeued_status(), regenerations=item.regenerations + 1, claimed_by=None, claimed_at=None,
            conversation_id=None, submission_id=None, updated_at=now)).rowcount == 1:
        usage = result.usage
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == item.batch_id).values(
            input_tokens=batch_jobs.c.input_tokens + usage.input_tokens,
            output_tokens=batch_jobs.c.output_tokens + usage.output_tokens,
            cost_usd=batch_jobs.c.cost_usd + result.cost_usd,
            judge_cost_usd=batch_jobs.c.judge_cost_usd + judge_cost, updated_at=now))
        return "requeued"
    moved = conn.execute(sa.select(batch_items.c.regenerations).where(batch_items.c.id == item.id)).scalar()
    return "already" if moved is not None and int(moved) > item.regenerations else None


def record_item_failure(engine: Engine, item: ClaimedItem, error: AppError) -> str:
    """Count a failed attempt: back to pending while attempts remain and the error is recoverable, else failed.

    Applies only to the claim `item` came from: if the item was requeued in the meantime (its
    worker went silent for a lease period, so it counts a lost attempt) and perhaps claimed again,
    this late outcome changes nothing and "superseded" is returned.
    """

    def _record() -> str:
        now = utcnow()
        attempts = item.attempts + 1
        final = attempts >= get_settings().item_max_attempts or not error.is_recoverable
        status = "failed" if final else "pending"
        with write_tx(engine) as conn:
            this_claim = [batch_items.c.id == item.id, batch_items.c.status == "running",
                          batch_items.c.attempts == item.attempts, batch_items.c.lost_attempts == item.lost_attempts]
            if item.claimed_by is not None:
                this_claim.append(batch_items.c.claimed_by == item.claimed_by)
            changed = conn.execute(batch_items.update().where(*this_claim).values(
                status="failed" if final else requeued_status(), attempts=attempts, last_error=error.message, last_error_code=error.code,
                claimed_by=None, claimed_at=None, updated_at=now)).rowcount
        return status if changed else "superseded"

    return run_db(_record)


def _set_status(engine: Engine, batch_id: str, allowed_from: tuple[str, ...], values: dict[str, Any],
                extra: sa.ColumnElement[bool] | None = None) -> bool:
    def _write() -> bool:
        cond = [batch_jobs.c.id == batch_id, batch_jobs.c.status.in_(allowed_from)]
        if extra is not None:
            cond.append(extra)
        with write_tx(engine) as conn:
            return conn.execute(batch_jobs.update().where(*cond).values(updated_at=utcnow(), **values)).rowcount == 1

    return run_db(_write)


def fail_batch(engine: Engine, batch_id: str, reason: str) -> bool:
    """Fail a batch at once (a rejected key, a spend limit): its pending items stay pending for a resume."""
    return _set_status(engine, batch_id, ("queued", "running", "paused"), {
        "status": "failed", "status_reason": reason, "pause_kind": None, "finished_at": utcnow(),
        "lease_owner": None, "lease_expires_at": None})


def pause_for_breaker(engine: Engine, batch_id: str, reason: str) -> bool:
    """Pause a running batch because the model service's breaker is open; it resumes by itself."""
    return _set_status(engine, batch_id, ("running",), {"status": "paused", "pause_kind": "breaker",
                                                        "status_reason": reason})


def pause_for_budget(engine: Engine, batch_id: str, reason: str) -> bool:
    """Pause a running batch whose spend cap is reached; it stays paused until a person resumes it."""
    return _set_status(engine, batch_id, ("running",), {"status": "paused", "pause_kind": "budget",
                                                        "status_reason": reason})


def resume_after_breaker(engine: Engine, batch_id: str) -> bool:
    """Set a breaker-paused batch running again; False if a user paused or cancelled it meanwhile."""
    return _set_status(engine, batch_id, ("paused",), {"status": "running", "pause_kind": None,
                                                       "status_reason": None},
                       extra=batch_jobs.c.pause_kind == "breaker")


def finalize_batch(engine: Engine, batch_id: str) -> str | None:
    """Complete (or fail, if items failed) a running batch with no pending or running items; the new state or None."""

    def _write() -> str | None:
        with write_tx(engine) as conn:
            return _derive_final_state(conn, batch_id, utcnow(), from_status="running")

    return run_db(_write)


def _derive_final_state(conn: Connection, batch_id: str, now: datetime, *, from_status: str) -> str | None:
    """Set a batch in `from_status` to the final state its items say (completed, or failed naming how many).

    None, and nothing written, while items are pending or running or the batch is in another state.
    The batch row is locked before its items are counted, so a commit that lands meanwhile
    waits and then reconciles what this wrote (the one lock order: batch row, then items).
    """
    status = conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == batch_id)
                          .with_for_update()).scalar()
    if status != from_status:
        return None
    counts: dict[str, int] = dict(conn.execute(sa.select(batch_items.c.status, sa.func.count())
                               .where(batch_items.c.batch_id == batch_id)
                               .group_by(batch_items.c.status)).all())
    if counts.get("pending", 0) or counts.get("running", 0):
        return None
    failed = int(counts.get("failed", 0))
    if failed:
        total = sum(int(v) for v in counts.values())
        values: dict[str, Any] = {"status": "failed", "status_reason": (
            f"{failed} of {total} items failed (see failed items for each one's last error); "
            f"retry them with `python -m core batch resume {batch_id} --failed-only` (or Retry failed "
            "in the Batches page).")}
    else:
        values = {"status": "completed", "status_reason": None}
    if from_status == "running":
        values["finished_at"] = now
    conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id, batch_jobs.c.status == from_status)
                 .values(updated_at=now, lease_owner=None, lease_expires_at=None, pause_kind=None, **values))
    return str(values["status"])
