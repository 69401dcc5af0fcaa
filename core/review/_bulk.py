"""Bulk accept or reject of a filtered queue (or a whole batch's), as a resumable operation.

The operation works through the conversations that need review and match the filter, oldest
first, settings.review_bulk_chunk_rows a transaction. Each chunk's transaction sets their review
state, writes one `review_decisions` row each (under the operation's id) and advances the
operation's checkpoint (core.store.resumable, type "bulk_approve"), so the checkpoint never
counts a chunk that was rolled back and never misses one that committed. Killed mid-way (kill -9,
the database gone), the same person asking for the same decision on the same filter resumes it
with the first run's parameters: its note, its time, its cut-off (conversations made after it
began are not part of it), its operation id. `review_decisions` is unique on (operation_id,
conversation_id), so no decision is applied twice; a conversation already decided (by hand, or
by a chunk that committed) no longer needs review and is not picked again.

The transaction that decides the last chunk writes the operation's one audit row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, Kind, current_actor, where
from core.auth.audit import AuditAction, audit
from core.config import get_settings
from core.errors import ValidationError
from core.resilience import run_db
from core.review._decide import checked_decision, checked_note, record_decisions
from core.review._queue import ORDER, ReviewFilter, reviewable
from core.store.resumable import Checkpoint, advance, begin, finish, reload
from core.store.schema import conversations, recovery_checkpoints, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["OPERATION_TYPE", "BulkResult", "Interrupted", "bulk_decide", "bulk_operation_key", "count_to_decide",
           "interrupted_bulk"]

OPERATION_TYPE = "bulk_approve"  # the seed's operation type: bulk accept and bulk reject alike
_c = conversations.c

Progress = Callable[[int, int], None]  # (decided so far, over all runs; how many in all)


@dataclass(frozen=True)
class BulkResult:
    decided: int  # over every run of the operation
    operation_id: str  # review_decisions.operation_id of its decisions
    resumed: bool  # it continued an interrupted run


@dataclass(frozen=True)
class Interrupted:
    """A bulk decision of the actor's that stopped before its end: what it decides, on which filter, how far."""

    decision: str
    filter: ReviewFilter
    done: int
    note: str | None
    started_at: datetime


def interrupted_bulk(engine: Engine) -> list[Interrupted]:
    """The actor's bulk decisions that did not finish (killed, the database gone), oldest first.

    Asking for the same decision on the same filter again (bulk_decide) resumes one.
    """
    actor = current_actor(engine)
    cp = recovery_checkpoints.c
    with read_conn(engine, actor=actor) as conn:
        rows = conn.execute(sa.select(cp.state, cp.completed_count, cp.created_at).where(
            cp.operation_type == OPERATION_TYPE, cp.expires_at.is_(None),
            where(actor, Action.ACT, Kind.CHECKPOINT, cp.owner_id)).order_by(cp.created_at, cp.id)).all()
    out: list[Interrupted] = []
    for row in rows:
        params = dict((row.state or {}).get("params") or {})
        try:
            flt = ReviewFilter.from_described(dict(params.get("filter") or {}))
        except ValidationError:
            continue  # a filter this version no longer reads: nothing to offer
        out.append(Interrupted(str(params.get("decision")), flt, int(row.completed_count), params.get("note"),
                               row.created_at))
    return out


def bulk_operation_key(actor: Actor, decision: str, flt: ReviewFilter) -> str:
    """The checkpoint's key: one per person, decision and filter, so asking again resumes the same one."""
    who = "system" if actor.system or not actor.user_id else actor.user_id.replace("-", "")
    digest = hashlib.sha256(json.dumps(_queue_of(flt).describe(), sort_keys=True).encode()).hexdigest()[:16]
    return f"{decision}:{who}:{digest}"[:64]


def _queue_of(flt: ReviewFilter) -> ReviewFilter:
    """A bulk decision acts on the conversations that still need review, whatever status the list showed."""
    return ReviewFilter(**{**flt.describe(), "status": "needs_review"})


def count_to_decide(engine: Engine, flt: ReviewFilter) -> int:
    """How many conversations a bulk decision of `flt` would decide now (the confirmation's number)."""
    actor = current_actor(engine)
    with read_conn(engine, actor=actor) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(conversations).where(
            *_queue_of(flt).where(conn), reviewable(actor))).scalar_one())


def bulk_decide(engine: Engine, flt: ReviewFilter, decision: str, note: str | None = None, *,
                progress: Progress | None = None) -> BulkResult:
    """Accept or reject every conversation of `flt` that needs review, in chunks that resume; how many, in all.

    An interrupted run of the same person, decision and filter is resumed with its own note and time.
    `progress(done, total)` is called after each chunk.
    """
    status, note = checked_decision(decision), checked_note(note)
    actor = current_actor(engine)
    flt = _queue_of(flt)
    now = utcnow()
    cp = begin(engine, OPERATION_TYPE, bulk_operation_key(actor, status, flt), {
        "operation": str(uuid.uuid4()), "decision": status, "note": note, "at": now.isoformat(),
        "filter": flt.describe()})
    params = cp.params
    flt = ReviewFilter.from_described(params["filter"])
    at = datetime.fromisoformat(params["at"])
    chunk = get_settings().review_bulk_chunk_rows
    left = _remaining(engine, actor, flt, at, cp.after)
    total = cp.done + left

    def _chunk(cp: Checkpoint) -> tuple[Checkpoint, int]:
        with write_tx(engine, actor=actor) as conn:
            cp = reload(conn, cp)  # a retry after a commit whose acknowledgement was lost starts after it
            pick = (sa.select(*ORDER).where(*_cond(conn, actor, flt, at, cp.after))
                    .order_by(*ORDER).limit(chunk).with_for_update())
            rows = conn.execute(pick).all()
            ids = [r.id for r in rows]
            decided = list(conn.execute(conversations.update().where(
                _c.id.in_(ids), _c.review_status == "needs_review", reviewable(actor)).values(
                review_status=status, reviewed_by=actor.user_id, reviewed_at=at, review_note=params["note"])
                .returning(_c.id)).scalars()) if ids else []
            record_decisions(conn, decided, status, params["note"], actor, at, operation_id=params["operation"])
            last = [rows[-1].created_at.isoformat(), rows[-1].id] if rows else cp.after
            cp = advance(conn, cp, done=len(decided), after=last)
            if len(rows) < chunk:
                audit(conn, AuditAction.REVIEW_DECISION, "review_operation", params["operation"],
                      {"decision": status, "count": cp.done, "filter": flt.describe(), "bulk": True,
                       **({"note": params["note"]} if params["note"] else {})}, actor=actor)
        return cp, len(rows)

    while True:
        cp, picked = run_db(_chunk, cp)
        if progress is not None:
            progress(cp.done, max(total, cp.done))
        if picked < chunk:
            break
    finish(engine, cp)
    return BulkResult(cp.done, params["operation"], cp.resumed)


def _cond(conn: Any, actor: Actor, flt: ReviewFilter, at: datetime, after: Any) -> list[sa.ColumnElement[bool]]:
    """The conversations left to decide: the filter's, made before the operation began, after its last key."""
    cond = [*flt.where(conn), reviewable(actor), _c.created_at <= at]
    if after:
        cond.append(sa.tuple_(*ORDER) > sa.tuple_(sa.literal(datetime.fromisoformat(after[0]), _c.created_at.type),
                                                  sa.literal(after[1])))
    return cond


def _remaining(engine: Engine, actor: Actor, flt: ReviewFilter, at: datetime, after: Any) -> int:
    with read_conn(engine, actor=actor) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(conversations)
                                .where(*_cond(conn, actor, flt, at, after))).scalar_one())
