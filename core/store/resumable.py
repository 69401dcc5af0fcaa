"""Checkpoints of the long operations that have no items table, in `recovery_checkpoints`.

A batch keeps its progress in its items (core.batches). An operation that works through
many rows without such a table — resolving a whole error group, applying error-log
retention (the cleanup job) — works in chunks, one transaction each, and advances its
checkpoint in the same transaction as the chunk, so the checkpoint never claims a chunk
that was rolled back. Interrupted (a crash, a kill, the database gone), it resumes from its
checkpoint the next time the same operation is started: with the parameters fixed when it
began (a cut-off, a timestamp, a user), after the last key it finished, counting on from
what it had counted. A finished checkpoint stays as the operation's record for
settings.checkpoint_retention_days, then the cleanup job removes it.

    cp = begin(engine, "retention", "error_logs", {"now": ...})  # or the unfinished one, resumed
    while True:
        with write_tx(engine) as conn:
            n, last = ...one chunk after cp.after...
            cp = advance(conn, cp, done=n, after=last)
        if n < chunk:
            break
    finish(engine, cp)

One row per (kind, operation_id): starting an operation whose last run finished starts it
afresh; starting one whose last run did not finish resumes it.

A checkpoint is its starter's (`owner_id`: the actor's owner id; none for the system): only they
(or an admin, or the system) resume, advance or finish it. The key is not per owner, so an
operation a person runs names them in its operation_id when another person may run the same one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth import Action, Actor, Kind, current_actor, where
from core.auth.claims import AS_ACTOR
from core.config import get_settings
from core.store.schema import recovery_checkpoints, utcnow
from core.store.tx import write_tx

__all__ = ["Checkpoint", "advance", "begin", "finish", "reload"]

_cp = recovery_checkpoints.c


@dataclass(frozen=True)
class Checkpoint:
    kind: str
    operation_id: str
    params: dict[str, Any]  # fixed when the operation began; a resume uses these, not the caller's
    done: int = 0  # rows done so far, over every run of this operation
    after: Any = None  # the last key done; None: nothing yet
    progress: dict[str, Any] = field(default_factory=dict)  # what else the operation counts
    resumed: bool = False  # begin() found it unfinished


def _where(kind: str, operation_id: str, actor: Actor) -> list[sa.ColumnElement[bool]]:
    return [_cp.operation_type == kind, _cp.operation_id == operation_id,
            where(actor, Action.ACT, Kind.CHECKPOINT, _cp.owner_id)]


def begin(engine: Engine, kind: str, operation_id: str, params: dict[str, Any]) -> Checkpoint:
    """The unfinished checkpoint of this operation (to resume), or a fresh one with `params`."""
    now = utcnow()
    actor = current_actor(engine)
    with write_tx(engine, actor=actor) as conn:
        row = conn.execute(sa.select(_cp.state, _cp.completed_count, _cp.expires_at)
                           .where(*_where(kind, operation_id, actor)).with_for_update()).first()
        if row is not None and row.expires_at is None:
            state = dict(row.state or {})
            return Checkpoint(kind, operation_id, dict(state.get("params") or {}), int(row.completed_count),
                              state.get("after"), dict(state.get("progress") or {}), resumed=True)
        values = {"completed_count": 0, "failed_count": 0, "skipped_count": 0, "last_processed_index": None,
                  "state": {"params": params, "after": None, "progress": {}}, "created_at": now,
                  "updated_at": now, "expires_at": None, "owner_id": actor.owner_id}
        if row is None:
            conn.execute(recovery_checkpoints.insert().values(operation_type=kind, operation_id=operation_id,
                                                              **values))
        else:
            conn.execute(recovery_checkpoints.update().where(*_where(kind, operation_id, actor)).values(**values))
    return Checkpoint(kind, operation_id, dict(params))


def reload(conn: Connection, cp: Checkpoint) -> Checkpoint:
    """`cp` as its row stands now, locked until `conn`'s transaction ends: call it first in a chunk's transaction.

    A chunk retried after its COMMIT reached the server (the acknowledgement was lost) then starts
    after the keys that commit did, and counts on from its count, instead of from the caller's copy.
    """
    actor = conn.get_execution_options().get(AS_ACTOR) or current_actor(conn.engine)
    row = conn.execute(sa.select(_cp.state, _cp.completed_count)
                       .where(*_where(cp.kind, cp.operation_id, actor)).with_for_update()).first()
    if row is None:
        return cp
    state = dict(row.state or {})
    return replace(cp, done=int(row.completed_count), after=state.get("after"),
                   progress=dict(state.get("progress") or {}))


def advance(conn: Connection, cp: Checkpoint, *, done: int, after: Any, **progress: Any) -> Checkpoint:
    """Record one chunk: `done` more rows, up to key `after`; call it inside the chunk's own transaction."""
    new = replace(cp, done=cp.done + done, after=after, progress={**cp.progress, **progress})
    # the actor the chunk's transaction runs as (write_tx's `actor`), else the running code's
    actor = conn.get_execution_options().get(AS_ACTOR) or current_actor(conn.engine)
    conn.execute(recovery_checkpoints.update().where(*_where(cp.kind, cp.operation_id, actor)).values(
        completed_count=new.done, state={"params": cp.params, "after": after, "progress": new.progress},
        updated_at=utcnow()))
    return new


def finish(engine: Engine, cp: Checkpoint) -> None:
    """Mark the operation finished; its checkpoint is kept as its record until the retention runs out."""
    now = utcnow()
    actor = current_actor(engine)
    with write_tx(engine, actor=actor) as conn:
        conn.execute(recovery_checkpoints.update().where(*_where(cp.kind, cp.operation_id, actor)).values(
            updated_at=now, expires_at=now + timedelta(days=get_settings().checkpoint_retention_days)))
