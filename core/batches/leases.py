"""Leases and claims: which worker works on which batch and item, in conditional UPDATEs.

A batch lease (lease_owner, lease_expires_at) makes one worker the batch's owner: it
renews the lease by heartbeat, resets items a dead worker left running and finalizes the
batch. Other workers may join a running batch and claim items too (item-level claims), so
several workers on one Postgres database share a batch without taking the same item.

Each claim is one conditional UPDATE, so two workers racing for the same row cannot both
win. Dialect difference, kept here: on Postgres the item claim's subquery takes row
locks with FOR UPDATE SKIP LOCKED, so racing workers pick different items instead of
queueing; SQLite ignores the clause (its write transactions are serialized by BEGIN
IMMEDIATE, see core.store.tx), so one query serves both.

Lock order, to keep Postgres free of deadlocks: a transaction that touches a batch row and
its items locks the batch row first, then items.

Leases and claims are the system's work, never a person's: every transaction here runs as the
system (Postgres role service_role, past Row Level Security), whoever calls it, since a worker
works every person's batches.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import system_actor
from core.config import get_settings
from core.errors import ErrorCode
from core.resilience import run_db, run_db_past_breaker
from core.store.schema import batch_items, batch_jobs, message_batch_submissions, utcnow
from core.store.tx import read_conn, write_tx

__all__ = [
    "ClaimedBatch",
    "ClaimedItem",
    "OPEN_SUBMISSION_STATES",
    "JoinableBatch",
    "claim_batch",
    "claim_expired",
    "claim_items",
    "find_joinable_batch",
    "next_parked",
    "park_batch",
    "release_items",
    "release_lease",
    "renew",
]


@dataclass(frozen=True)
class ClaimedBatch:
    batch_id: str
    status: str  # "running", or "paused" when a breaker pause is inherited from a dead worker
    pause_kind: str | None
    concurrency: int
    requeued: int  # items the previous owner left running, back to pending
    owner_id: str | None = None  # the person whose batch it is: the worker acts for them on it
    mode: str = "online"  # online | message_batches (core.batches.message_batches works those)


@dataclass(frozen=True)
class JoinableBatch:
    batch_id: str
    concurrency: int
    owner_id: str | None


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    batch_id: str
    item_index: int
    params: dict[str, Any]
    attempts: int
    claimed_by: str | None = None  # the worker that claimed it: its outcome applies only to this claim
    lost_attempts: int = 0  # with attempts and claimed_by, tells this claim from a later one of the same item
    regenerations: int = 0  # times routing sent this item back already (core.quality), against the setting


_SYSTEM = system_actor()


def _lease_free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(batch_jobs.c.lease_expires_at.is_(None), batch_jobs.c.lease_expires_at < now)


# a remote batch not collected yet: its items' results are still to be saved (or the remote batch cancelled)
OPEN_SUBMISSION_STATES = ("submitting", "in_progress", "canceling", "ended")


def _has_open_submission() -> sa.ColumnElement[bool]:
    return sa.exists().where(message_batch_submissions.c.batch_id == batch_jobs.c.id,
                             message_batch_submissions.c.state.in_(OPEN_SUBMISSION_STATES))


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    """Queued batches, and running or breaker-paused ones whose owner is gone (lease expired or released).

    Also a paused or cancelled Message Batches batch with remote batches not collected yet: what
    they paid for is saved (and a cancelled one's remote batches are cancelled) whoever paused it.
    """
    return sa.or_(
        batch_jobs.c.status == "queued",
        sa.and_(batch_jobs.c.status == "running", _lease_free(now)),
        sa.and_(batch_jobs.c.status == "paused", batch_jobs.c.pause_kind == "breaker", _lease_free(now)),
        sa.and_(batch_jobs.c.status.in_(("paused", "cancelled")), batch_jobs.c.mode == "message_batches",
                _lease_free(now), _has_open_submission()),
    )


def _lock_skipping_locked(query: sa.Select[Any]) -> sa.Select[Any]:
    # Postgres: racing workers skip each other's locked rows; SQLite renders no clause at all.
    return query.with_for_update(skip_locked=True)


def claim_batch(engine: Engine, worker_id: str) -> ClaimedBatch | None:
    """Take the lease of the oldest claimable batch, or None. Items its dead owner left running go back to pending."""

    def _claim() -> ClaimedBatch | None:
        settings = get_settings()
        now = utcnow()
        with write_tx(engine, actor=_SYSTEM) as conn:
            candidates = conn.execute(
                sa.select(batch_jobs.c.id, batch_jobs.c.lease_owner, batch_jobs.c.lease_expires_at)
                .where(_claimable(now)).order_by(batch_jobs.c.created_at, batch_jobs.c.id).limit(5)).all()
            for batch_id, old_owner, old_expiry in candidates:
                won = conn.execute(
                    batch_jobs.update().where(batch_jobs.c.id == batch_id, _claimable(now)).values(
                        lease_owner=worker_id,
                        lease_expires_at=now + timedelta(seconds=settings.lease_duration_s),
                        status=sa.case((batch_jobs.c.status == "queued", "running"), else_=batch_jobs.c.status),
                        status_reason=sa.case((batch_jobs.c.status == "queued", None),
                                              else_=batch_jobs.c.status_reason),
                        started_at=sa.func.coalesce(batch_jobs.c.started_at, now),
                        updated_at=now)).rowcount
                if won != 1:
                    continue
                # an expired lease means its owner died: its running items are orphans now
                dead = old_owner if old_owner and old_expiry is not None and old_expiry < now else None
                requeued = _reset_orphans(conn, batch_id, now, dead_owner=dead)
                row = conn.execute(sa.select(batch_jobs.c.status, batch_jobs.c.pause_kind, batch_jobs.c.concurrency,
                                             batch_jobs.c.owner_id, batch_jobs.c.mode)
                                   .where(batch_jobs.c.id == batch_id)).one()
                return ClaimedBatch(batch_id, row.status, row.pause_kind, int(row.concurrency), requeued, row.owner_id,
                                    row.mode)
        return None

    return run_db(_claim)


def claim_expired(now: datetime) -> sa.ColumnElement[bool]:
    """An item claim no worker has marked alive for a lease period (or ever): its worker is gone."""
    stale = batch_items.c.claimed_at < now - timedelta(seconds=get_settings().lease_duration_s)
    return sa.or_(stale, batch_items.c.claimed_at.is_(None))


def _reset_orphans(conn: Connection, batch_id: str, now: datetime, *, dead_owner: str | None) -> int:
    """Running items whose worker is dead (named, or silent for a lease period) go back to pending.

    A death is not the item's failure, and it is counted apart from the item's own `attempts`
    (in `lost_attempts`), because a worker that dies takes every item it had in flight with
    it: with 8 in flight, 7 are bystanders of whatever killed it. The rule that tells a
    poison item (one that kills every worker that takes it) from a bystander:
    - an item lost once becomes a suspect, and suspects are claimed last and run alone,
      one per worker with nothing else in flight (claim_items(suspect=True));
    - so every further death is charged to the one item that was running, and an item is
      failed (`worker_lost`) only once settings.item_max_lost_attempts deaths were counted
      on it — with the default 3: the first death in company, then two while it ran alone.
    Kill -9s, crashes and restarts of workers therefore never fail an innocent item unless
    it alone was in flight at two of them, and an item's own budget
    (settings.item_max_attempts) stays for failures of its own (model errors, bad replies).
    A live worker keeps its items fresh even while it holds an outcome through a store
    outage (its heartbeat is not refused by its own open database breaker), so an item goes
    stale only when its worker crashed, was killed, was stopped, or could not reach the
    store for a whole lease period while this owner could.
    """
    s = get_settings()
    orphan = claim_expired(now)
    if dead_owner:
        orphan = sa.or_(orphan, batch_items.c.claimed_by == dead_owner)
    # an item in a remote Message Batch has no worker: it waits for its result, however long that takes
    mine = [batch_items.c.batch_id == batch_id, batch_items.c.status == "running", orphan,
            batch_items.c.submission_id.is_(None)]
    poison = batch_items.c.lost_attempts + 1 >= s.item_max_lost_attempts
    conn.execute(batch_items.update().where(*mine, poison).values(
        status="failed", lost_attempts=batch_items.c.lost_attempts + 1, last_error_code=ErrorCode.WORKER_LOST,
        last_error=f"Every worker that took this item stopped responding before saving it (crashed, was "
                   f"killed, or lost its connection to the database): {s.item_max_lost_attempts} times, so it "
                   "is not tried again automatically (it may be what brings them down). Use Retry failed to "
                   "try it.",
        claimed_by=None, claimed_at=None, updated_at=now))
    requeued = int(conn.execute(batch_items.update().where(*mine).values(
        status="pending", lost_attempts=batch_items.c.lost_attempts + 1, claimed_by=None, claimed_at=None,
        updated_at=now)).rowcount)
    return requeued


def find_joinable_batch(engine: Engine, worker_id: str) -> JoinableBatch | None:
    """A running batch another live worker owns that still has pending items."""
    now = utcnow()
    has_pending = sa.exists().where(batch_items.c.batch_id == batch_jobs.c.id, batch_items.c.status == "pending")
    with read_conn(engine, actor=_SYSTEM) as conn:
        row = conn.execute(
            sa.select(batch_jobs.c.id, batch_jobs.c.concurrency, batch_jobs.c.owner_id).where(
                batch_jobs.c.status == "running", batch_jobs.c.mode == "online", batch_jobs.c.lease_owner != worker_id,
                batch_jobs.c.lease_expires_at >= now, has_pending)
            .order_by(batch_jobs.c.created_at).limit(1)).first()
    return JoinableBatch(str(row.id), int(row.concurrency), row.owner_id) if row is not None else None


def claim_items(engine: Engine, batch_id: str, worker_id: str, n: int, *, suspect: bool = False,
                ) -> list[ClaimedItem]:
    """Claim up to n pending items of a running batch, lowest index first; [] when there are none.

    Items whose worker died with them in flight (lost_attempts > 0) are suspects: the default
    claim leaves them out, and `suspect=True` claims one of them, which the worker then runs
    alone (see core.batches.worker), so that a further death is its own doing, not a
    bystander's fate.
    """
    if n <= 0:
        return []

    def _claim() -> list[ClaimedItem]:
        now = utcnow()
        lost = batch_items.c.lost_attempts > 0 if suspect else batch_items.c.lost_attempts == 0
        pick = _lock_skipping_locked(
            sa.select(batch_items.c.id).where(batch_items.c.batch_id == batch_id, batch_items.c.status == "pending",
                                              lost)
            .order_by(batch_items.c.item_index).limit(1 if suspect else n))
        running = sa.exists().where(batch_jobs.c.id == batch_id, batch_jobs.c.status == "running")
        with write_tx(engine, actor=_SYSTEM) as conn:
            rows = conn.execute(
                batch_items.update().where(batch_items.c.id.in_(pick.scalar_subquery()),
                                           batch_items.c.status == "pending", running)
                .values(status="running", claimed_by=worker_id, claimed_at=now, updated_at=now)
                .returning(batch_items.c.id, batch_items.c.item_index, batch_items.c.params,
                           batch_items.c.attempts, batch_items.c.lost_attempts, batch_items.c.regenerations)).all()
        return sorted((ClaimedItem(int(r.id), batch_id, int(r.item_index), dict(r.params), int(r.attempts), worker_id,
                                   int(r.lost_attempts), int(r.regenerations)) for r in rows),
                      key=lambda it: it.item_index)

    return run_db(_claim)


def renew(engine: Engine, worker_id: str, batch_id: str | None, *, owner: bool,
          item_ids: Collection[int] | None = None) -> bool:
    """Heartbeat: extend the lease (owner) and mark this worker's items alive; False if the lease was lost.

    `item_ids`: only these items are alive (the ones the worker is still working on, including
    those whose outcome it holds through a store outage). An item it let go of unsettled (it
    was stopped, or even recording the failure failed) is then left to go stale, so the
    owner's sweep puts it back to pending instead of it staying "running" for as long as this
    worker lives. None: all of this worker's running items.

    Never refused by this process's open database breaker (run_db_past_breaker): the breaker
    protects the database from load, and a heartbeat is what tells the other workers this
    one is alive; missing them through a cool-down longer than the lease gets its items
    taken over and paid for twice.
    """

    def _renew() -> bool:
        settings = get_settings()
        now = utcnow()
        with write_tx(engine, actor=_SYSTEM) as conn:
            kept = False
            if batch_id is not None and owner:  # the batch row first, then items: the one lock order
                kept = conn.execute(batch_jobs.update().where(
                    batch_jobs.c.id == batch_id, batch_jobs.c.lease_owner == worker_id).values(
                    lease_expires_at=now + timedelta(seconds=settings.lease_duration_s))).rowcount == 1
            alive = [batch_items.c.claimed_by == worker_id, batch_items.c.status == "running"]
            if item_ids is not None:
                alive.append(batch_items.c.id.in_(list(item_ids)))
            if item_ids is None or item_ids:
                conn.execute(batch_items.update().where(*alive).values(claimed_at=now))
            if kept and batch_id is not None:  # joiners that died leave items behind; the owner sweeps them
                _reset_orphans(conn, batch_id, now, dead_owner=None)
            return kept

    return run_db_past_breaker(_renew)


def park_batch(engine: Engine, batch_id: str, worker_id: str, until: datetime) -> bool:
    """Let go of a Message Batches batch until its next poll: no worker claims it before `until`.

    While its remote batches process (up to 24 h) the worker works other batches; the lease row
    keeps the time, so whoever claims it next does at its poll time, not at once and not never.
    """

    def _park() -> bool:
        with write_tx(engine, actor=_SYSTEM) as conn:
            return conn.execute(batch_jobs.update().where(
                batch_jobs.c.id == batch_id, batch_jobs.c.lease_owner == worker_id).values(
                lease_owner=None, lease_expires_at=until, updated_at=utcnow())).rowcount == 1

    return run_db(_park)


def next_parked(engine: Engine) -> datetime | None:
    """When the first parked Message Batches batch may be claimed again (now, if its time has come); None if none is.

    One whose park ran out since the last claim counts too: it is claimable now, not gone.
    """
    now = utcnow()
    with read_conn(engine, actor=_SYSTEM) as conn:
        times = conn.execute(sa.select(batch_jobs.c.lease_expires_at).where(
            batch_jobs.c.mode == "message_batches", batch_jobs.c.lease_owner.is_(None),
            batch_jobs.c.status.in_(("running", "paused", "cancelled")), _has_open_submission())).scalars().all()
    return min((t or now for t in times), default=None)


def held_elsewhere(engine: Engine, worker_id: str) -> list[tuple[str, datetime]]:
    """Unfinished batches another worker's unexpired lease holds: (batch id, when the lease runs out), soonest first.

    A worker killed mid-batch still holds its lease until it runs out; `worker --once` names these
    rather than exit as if nothing were left.
    """
    with read_conn(engine, actor=_SYSTEM) as conn:
        rows = conn.execute(sa.select(batch_jobs.c.id, batch_jobs.c.lease_expires_at).where(
            batch_jobs.c.status.in_(("queued", "running")), batch_jobs.c.lease_owner.is_not(None),
            batch_jobs.c.lease_owner != worker_id, batch_jobs.c.lease_expires_at >= utcnow(),
        ).order_by(batch_jobs.c.lease_expires_at)).all()
    return [(r.id, r.lease_expires_at) for r in rows]


def release_lease(engine: Engine, batch_id: str, worker_id: str) -> bool:
    """Give the lease up now so the next worker need not wait for it to expire."""

    def _release() -> bool:
        with write_tx(engine, actor=_SYSTEM) as conn:
            return conn.execute(batch_jobs.update().where(
                batch_jobs.c.id == batch_id, batch_jobs.c.lease_owner == worker_id).values(
                lease_owner=None, lease_expires_at=None, updated_at=utcnow())).rowcount == 1

    return run_db(_release)


def requeued_status() -> sa.ColumnElement[str]:
    """'pending' for an item going back to the queue, or 'skipped' if its batch was cancelled meanwhile."""
    batch_status = sa.select(batch_jobs.c.status).where(batch_jobs.c.id == batch_items.c.batch_id).scalar_subquery()
    return sa.case((batch_status == "cancelled", "skipped"), else_="pending")


def release_items(engine: Engine, worker_id: str, item_ids: list[int] | None = None) -> int:
    """This worker's running items (all, or those listed) go back to pending, their attempt not counted."""

    def _release() -> int:
        now = utcnow()
        cond = [batch_items.c.claimed_by == worker_id, batch_items.c.status == "running"]
        if item_ids is not None:
            if not item_ids:
                return 0
            cond.append(batch_items.c.id.in_(item_ids))
        with write_tx(engine, actor=_SYSTEM) as conn:
            return int(conn.execute(batch_items.update().where(*cond).values(
                status=requeued_status(), claimed_by=None, claimed_at=None, updated_at=now)).rowcount)

    return run_db(_release)
