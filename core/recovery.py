"""Recovery: find work that stopped half-way, say what happened and what to do, and clean up old rows.

What counts as what (each finding has `kind`, `id`, `what_happened`, `recommended_action`,
`action` — a short key a page can map to a button — and `details`):

- interrupted batch: status "running" but its lease expired (or was never renewed): the
  worker died. Any worker picks it up by itself; `resume_batch` does so explicitly.
- failed batch: a fatal error (rejected key, spend limit) or items that used up their attempts.
- paused batch: paused by a user (stays paused) or by the model service's circuit breaker
  (continues by itself when the breaker closes).
- orphaned draft: "in_progress" with no save for settings.orphan_draft_minutes: its tab was
  closed or the server stopped mid-generation. Resume it (prefill) or discard it.
- orphaned conversation, one of:
  * "item_not_done": a batch conversation whose batch item is not marked done (or points at
    another conversation). Item commits are one transaction, so this only follows manual
    edits or old data; the conversation is complete and the item can be marked done.
  * "batch_deleted": a batch conversation (item_index set) whose batch row is gone.
  * "draft_missing": a conversation linked to a draft that no longer exists. The cleanup job
    unlinks conversations when it removes their drafts, so this also means a manual deletion.

Cleanup (`cleanup_preview` counts, `apply_cleanup` removes, same keys):
- "checkpoints": checkpoints of long operations (core.store.resumable) finished more than
  settings.checkpoint_retention_days ago, and the per-batch counter rows earlier versions kept;
- "drafts": drafts past their expiry (settings.draft_ttl_hours after the last save) plus
  settings.draft_grace_days, whatever their status; their conversations stay;
- "error_logs": error log rows past retention (core.errorlog's retention rules).
Applying it is an admin's (or the system's: the workers run it on their interval); it runs as
the system and writes one audit row, in the transaction that removes the drafts and checkpoints.

Each list holds what the acting person may act on (their own batches, drafts and conversations;
an admin's are everyone's), chosen in the query itself, so its pages and totals agree on both
engines; each finding carries its row's `owner_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, Kind, acting_as, current_actor, may, require, system_actor, where
from core.auth.audit import AuditAction, audit
from core.batches.states import ITEM_STATES, is_interrupted, shown_state
from core.config import get_settings
from core.errorlog import apply_retention, retention_preview
from core.resilience import run_db
from core.store.paging import Page, Part, page_of_parts
from core.store.schema import (
    batch_items,
    batch_jobs,
    conversation_drafts,
    conversations,
    recovery_checkpoints,
    utcnow,
)
from core.store.tx import read_conn, write_tx

__all__ = [
    "ORPHAN_REASONS",
    "STOPPED_BATCH_KINDS",
    "apply_cleanup",
    "cleanup_preview",
    "find_failed_batches",
    "find_interrupted_batches",
    "find_orphaned_conversations",
    "find_orphaned_drafts",
    "find_paused_batches",
    "may_clean_up",
    "needs_attention",
    "orphaned_conversations_page",
    "orphaned_drafts_page",
    "scan",
    "stopped_batches_page",
    "summary",
]

# the Recovery page's lists of batches, in the order it shows them
STOPPED_BATCH_KINDS = ("interrupted_batches", "failed_batches", "paused_batches")
# why a conversation is out of step (see the module docstring), in the order they are listed
ORPHAN_REASONS = ("item_not_done", "batch_deleted", "draft_missing")


def _finding(kind: str, id_: str, owner_id: str | None, what: str, action_text: str, action: str,
             **details: Any) -> dict[str, Any]:
    return {"kind": kind, "id": id_, "owner_id": owner_id, "what_happened": what, "recommended_action": action_text,
            "action": action, "details": details}


def _batches_for(engine: Engine) -> sa.ColumnElement[bool]:
    """The batches the acting person may act on (resume, retry, cancel): what Recovery lists them."""
    return where(current_actor(engine), Action.ACT, Kind.BATCH, batch_jobs.c.owner_id)


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


_LAST_CHANGE = "_last_item_change"  # a key of the counts beside the statuses: when an item last changed


def _item_counts(conn: sa.Connection, batch_ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {b: {_LAST_CHANGE: None} for b in batch_ids}
    if batch_ids:
        for bid, status, n, changed in conn.execute(
            sa.select(batch_items.c.batch_id, batch_items.c.status, sa.func.count(), sa.func.max(batch_items.c.updated_at))
            .where(batch_items.c.batch_id.in_(batch_ids)).group_by(batch_items.c.batch_id, batch_items.c.status)):
            out[bid][status] = int(n)
            last = out[bid][_LAST_CHANGE]
            out[bid][_LAST_CHANGE] = changed if last is None or (changed is not None and changed > last) else last
    return out


Row = tuple[Any, dict[str, Any]]  # a batch_jobs row and its item counts by status


def _batches(conn: sa.Connection, where: list[sa.ColumnElement[bool]], offset: int = 0,
             limit: int | None = None) -> list[Row]:
    """The batches `where` selects, newest first (from `offset`, at most `limit`), each with its item counts."""
    query = sa.select(batch_jobs).where(*where).order_by(batch_jobs.c.updated_at.desc(), batch_jobs.c.id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = conn.execute(query).mappings().all()
    counts = _item_counts(conn, [r["id"] for r in rows])
    return [(r, counts[r["id"]]) for r in rows]


def _batch_part(engine: Engine, cond: list[sa.ColumnElement[bool]], finding: Callable[[Row], dict[str, Any]]
                ) -> Part:
    """The batches `cond` selects (of those the actor may act on) as one part of a paged list: counted, and
    only the page's rows read."""
    where = [*cond, _batches_for(engine)]

    def part(offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        with engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(batch_jobs).where(*where)).scalar_one())
            rows = _batches(conn, where, offset, limit) if limit > 0 and offset < total else []
        return total, [finding(row) for row in rows]

    return part


def _interrupted_part(engine: Engine, now: datetime) -> Part:
    """Running batches whose worker is gone: lease expired and no item changed since (see `is_interrupted`).

    Which running batches with a late lease are interrupted takes their items' last change, so
    all of those (as many as batches run at once) are read and counted, and the page cut after.
    """

    def part(offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        with engine.connect() as conn:
            late = _batches(conn, [batch_jobs.c.status == "running", sa.or_(
                batch_jobs.c.lease_expires_at.is_(None), batch_jobs.c.lease_expires_at < now), _batches_for(engine)])
        # a late lease whose items still move is a busy worker, not a dead one
        stopped = [(r, c) for r, c in late if is_interrupted(r["status"], r["lease_expires_at"], c[_LAST_CHANGE], now)]
        return len(stopped), [_interrupted(r, c) for r, c in stopped[offset:offset + max(limit, 0)]]

    return part


def _interrupted(r: Any, c: dict[str, Any]) -> dict[str, Any]:
    left = c.get("pending", 0) + c.get("running", 0)
    since = r["lease_expires_at"] or r["updated_at"]
    return _finding(
        "interrupted_batch", r["id"], r["owner_id"],
        f"The worker running '{r['name']}' stopped (crash, restart or shutdown) with {c.get('done', 0)} of "
        f"{r['total_items']} items done and {left} left; its lease ran out at {_when(since)}.",
        "Nothing is lost. A running worker picks it up by itself; if none is running, resume it "
        "(or start `python -m core worker`).", "resume",
        name=r["name"], done=c.get("done", 0), remaining=left, last_owner=r["lease_owner"])


def _reason(row: Any, counts: dict[str, Any], now: datetime) -> str | None:
    """The reason the Batches page shows for the same row and counts."""
    return shown_state(row["status"], row["status_reason"], counts, interrupted=False, pause_kind=row["pause_kind"],
                       now=now)[1]


def _failed_part(engine: Engine, now: datetime) -> Part:
    """Failed batches, with why and whether retrying the failed items or a plain resume is the fix."""

    def finding(row: Row) -> dict[str, Any]:
        r, c = row
        failed = c.get("failed", 0)
        if failed:
            action_text, action = f"Retry the {failed} failed items (done items are kept).", "retry_failed"
        else:
            action_text, action = ("Fix what the reason names (the API key comes from the environment or "
                                   ".streamlit/secrets.toml), then resume."), "resume"
        return _finding("failed_batch", r["id"], r["owner_id"], _reason(r, c, now) or "The batch failed.", action_text,
                        action, name=r["name"], done=c.get("done", 0), failed=failed, pending=c.get("pending", 0))

    return _batch_part(engine, [batch_jobs.c.status == "failed"], finding)


def _paused_part(engine: Engine, now: datetime) -> Part:
    """Paused batches: by a user (resume when ready), by the breaker (continues by itself) or by its budget."""

    def finding(row: Row) -> dict[str, Any]:
        r, c = row
        if r["pause_kind"] == "breaker":
            action_text, action = ("No action needed: it continues by itself when the model service recovers; "
                                   "\"Resume now\" tries at once."), "wait"
        elif r["pause_kind"] == "budget":
            action_text, action = ("Raise its budget (Set budget in its details, or `python -m core batch resume "
                                   f"{r['id']} --max-cost USD`), then resume it."), "resume"
        else:
            action_text, action = "Resume it when you are ready.", "resume"
        return _finding("paused_batch", r["id"], r["owner_id"], _reason(r, c, now) or "The batch is paused.", action_text,
                        action, name=r["name"], pause_kind=r["pause_kind"], done=c.get("done", 0),
                        remaining=c.get("pending", 0) + c.get("running", 0))

    return _batch_part(engine, [batch_jobs.c.status == "paused"], finding)


_BATCH_PARTS: dict[str, Callable[[Engine, datetime], Part]] = {
    "interrupted_batches": _interrupted_part, "failed_batches": _failed_part, "paused_batches": _paused_part}


def stopped_batches_page(engine: Engine, kinds: Sequence[str] = STOPPED_BATCH_KINDS, *, page: int = 1,
                         page_size: int = 20, now: datetime | None = None) -> Page:
    """One page of the interrupted, failed and paused batches (those of `kinds`, in that order); all counted."""
    unknown = [k for k in kinds if k not in _BATCH_PARTS]
    if unknown:
        raise ValueError(f"unknown kind of stopped batch: {unknown[0]!r}")
    now = now or utcnow()
    return page_of_parts([_BATCH_PARTS[k](engine, now) for k in STOPPED_BATCH_KINDS if k in kinds], page, page_size)


def _all(page: Callable[..., Page], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every row of a paged list, up to settings.list_max_rows (what a list prints)."""
    return page(*args, page=1, page_size=get_settings().list_max_rows, **kwargs).rows


def find_interrupted_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Running batches whose worker is gone: lease expired and no item changed since (see `is_interrupted`)."""
    return _all(stopped_batches_page, engine, ("interrupted_batches",), now=now)


def find_failed_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Failed batches, with why and whether retrying the failed items or a plain resume is the fix."""
    return _all(stopped_batches_page, engine, ("failed_batches",), now=now)


def find_paused_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Paused batches: by a user (resume when ready) or by the breaker (continues by itself)."""
    return _all(stopped_batches_page, engine, ("paused_batches",), now=now)


def orphaned_drafts_page(engine: Engine, *, page: int = 1, page_size: int = 20, now: datetime | None = None,
                         ) -> Page:
    """One page of the in-progress drafts with no save for settings.orphan_draft_minutes that the actor may
    resume or discard, and how many there are; each says whose it is, by name."""
    from core.auth.users import names_of  # users imports the store's services: only when a list is read

    page, page_size = max(1, int(page)), max(1, int(page_size))
    now = now or utcnow()
    cutoff = now - timedelta(minutes=get_settings().orphan_draft_minutes)
    d = conversation_drafts.c
    cond = [d.status == "in_progress", d.updated_at < cutoff,
            where(current_actor(engine), Action.ACT, Kind.DRAFT, d.user_id)]
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts).where(*cond))
                    .scalar_one())
        rows = conn.execute(
            sa.select(d.id, d.user_id, d.template, d.progress, d.updated_at,
                      sa.func.length(d.partial_text).label("chars")).where(*cond)
            .order_by(d.updated_at.desc(), d.id).limit(page_size).offset((page - 1) * page_size)).mappings().all()
    names = names_of(engine, (r["user_id"] for r in rows))
    return Page([_finding(
        "orphaned_draft", r["id"], r["user_id"],
        f"A {r['template']} generation by {names.get(r['user_id'], 'someone no longer known')} stopped at "
        f"{round(float(r['progress']) * 100)}% ({r['chars'] or 0} characters) and was last saved "
        f"{_when(r['updated_at'])}: the tab was closed or the server stopped.",
        "Resume it (it continues from the saved text) or discard it.", "resume_draft",
        owner=names.get(r["user_id"]), progress=float(r["progress"]), chars=int(r["chars"] or 0)) for r in rows],
        total, page, page_size)


def find_orphaned_drafts(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """In-progress drafts with no save for settings.orphan_draft_minutes (that the actor may act on)."""
    return _all(orphaned_drafts_page, engine, now=now)


# every item state but done, spelled out: an IN list reads the index, a != does not
_NOT_DONE = tuple(state for state in ITEM_STATES if state != "done")


def _query_part(engine: Engine, query: sa.Select[Any], order: Sequence[sa.ColumnElement[Any]],
                finding: Callable[[Any], dict[str, Any]]) -> Part:
    """The rows of `query` as one part of a paged list: counted, and only the page's rows read, in `order`."""

    def part(offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        with engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())
            rows = (conn.execute(query.order_by(*order).limit(limit).offset(offset)).mappings().all()
                    if limit > 0 and offset < total else [])
        return total, [finding(r) for r in rows]

    return part


def _orphan_parts(engine: Engine, reasons: Sequence[str], deep: bool) -> list[Part]:
    """The checks of find_orphaned_conversations, one part each, of the `reasons` asked for."""
    c, i, d = conversations, batch_items, conversation_drafts
    # the conversations the actor may delete (their own; an admin's are everyone's): what is listed to them
    mine = where(current_actor(engine), Action.DELETE, Kind.CONVERSATION, c.c.owner_id)
    by_item = sa.and_(c.c.batch_id == i.c.batch_id, c.c.item_index == i.c.item_index)
    columns = (c.c.id, c.c.owner_id, c.c.batch_id, c.c.item_index, i.c.status, i.c.conversation_id)
    # batch_id IN (...) AND status IN (...): seeks in the items' (batch_id, status, item_index) index
    out_of_step = [sa.and_(i.c.batch_id.in_(sa.select(batch_jobs.c.id)), i.c.status.in_(_NOT_DONE))]
    if deep:
        out_of_step.append(sa.and_(i.c.status == "done", sa.or_(i.c.conversation_id.is_(None),
                                                                i.c.conversation_id != c.c.id)))

    def item_not_done(r: Any) -> dict[str, Any]:
        return _finding(
            "orphaned_conversation", r["id"], r["owner_id"],
            f"Conversation for item {r['item_index']} of batch {r['batch_id']} is saved, but the item is "
            f"'{r['status']}'" + (" and points at another conversation." if r["conversation_id"] else "."),
            "The conversation is complete: mark the item done (do not generate it again).", "mark_item_done",
            reason="item_not_done", batch_id=r["batch_id"], item_index=r["item_index"])

    def batch_deleted(r: Any) -> dict[str, Any]:
        return _finding(
            "orphaned_conversation", r["id"], r["owner_id"],
            f"Conversation for item {r['item_index']} of a batch that was deleted.",
            "Keep it (it exports like any other) or delete it.", "keep_or_delete", reason="batch_deleted")

    def draft_missing(r: Any) -> dict[str, Any]:
        return _finding(
            "orphaned_conversation", r["id"], r["owner_id"],
            f"Conversation linked to draft {r['draft_id']}, which no longer exists.",
            "Nothing to recover: the conversation is complete. Clearing the link is optional.", "none",
            reason="draft_missing", draft_id=r["draft_id"])

    # each in the order of the index it reads, so a page is a seek, not a sort of every match
    parts = {
        "item_not_done": [_query_part(engine, sa.select(*columns).select_from(i).join(c, by_item).where(cond, mine),
                                      (i.c.batch_id, i.c.item_index), item_not_done) for cond in out_of_step],
        "batch_deleted": [_query_part(engine, sa.select(c.c.id, c.c.owner_id, c.c.item_index).where(
            c.c.batch_id.is_(None), c.c.item_index.is_not(None), mine), (c.c.item_index, c.c.id), batch_deleted)],
        "draft_missing": [_query_part(engine, sa.select(c.c.id, c.c.owner_id, c.c.draft_id)
                                      .outerjoin(d, d.c.id == c.c.draft_id)
                                      .where(c.c.draft_id.is_not(None), d.c.id.is_(None), mine),
                                      (c.c.draft_id, c.c.id), draft_missing)],
    }
    return [part for reason in ORPHAN_REASONS if reason in reasons for part in parts[reason]]


def orphaned_conversations_page(engine: Engine, reasons: Sequence[str] = ORPHAN_REASONS, *, page: int = 1,
                                page_size: int = 20, deep: bool = False) -> Page:
    """One page of the conversations out of step with their batch item or draft (of `reasons`); all counted.

    Each check starts from an index, never from every conversation: the items not done of each
    batch joined to the one conversation their (batch, index) may have; conversations without
    a batch but with an item index; conversations linked to a draft. `deep` adds what no index
    answers, a done item that does not name its own conversation (only a manual edit does
    that): it reads every done item.
    """
    unknown = [r for r in reasons if r not in ORPHAN_REASONS]
    if unknown:
        raise ValueError(f"unknown reason: {unknown[0]!r}")
    return page_of_parts(_orphan_parts(engine, reasons, deep), page, page_size)


def find_orphaned_conversations(engine: Engine, *, limit: int | None = None, deep: bool = False
                                ) -> list[dict[str, Any]]:
    """Conversations whose batch item or draft does not agree they exist, at most `limit` (settings.list_max_rows)."""
    return orphaned_conversations_page(engine, page_size=limit or get_settings().list_max_rows, deep=deep).rows


def needs_attention(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """How many batches and drafts the Recovery page lists, by kind (Home shows these, so both agree)."""
    now = now or utcnow()
    out = {kind: stopped_batches_page(engine, (kind,), page_size=1, now=now).total for kind in STOPPED_BATCH_KINDS}
    out["orphaned_drafts"] = orphaned_drafts_page(engine, page_size=1, now=now).total
    return out


def summary(engine: Engine, now: datetime | None = None, *, deep: bool = False) -> dict[str, int]:
    """How many of each kind the Recovery page lists: `needs_attention` and the conversations out of step."""
    return {**needs_attention(engine, now),
            "orphaned_conversations": orphaned_conversations_page(engine, page_size=1, deep=deep).total}


def scan(engine: Engine, now: datetime | None = None, *, deep: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Everything the recovery page shows, by kind (`deep`: see find_orphaned_conversations)."""
    return {
        "interrupted_batches": find_interrupted_batches(engine, now),
        "failed_batches": find_failed_batches(engine, now),
        "paused_batches": find_paused_batches(engine, now),
        "orphaned_drafts": find_orphaned_drafts(engine, now),
        "orphaned_conversations": find_orphaned_conversations(engine, deep=deep),
    }


# ---- cleanup ---------------------------------------------------------------------------------


def _expired_checkpoints(now: datetime) -> sa.ColumnElement[bool]:
    """Checkpoints of operations that finished before their retention ran out, and the old batch counters.

    Batches keep no checkpoint row any more (their items are their checkpoint); rows of type
    "batch" left by earlier versions are read by nothing and go with the first cleanup.
    """
    cp = recovery_checkpoints.c
    return sa.or_(cp.operation_type == "batch", sa.and_(cp.expires_at.is_not(None), cp.expires_at < now))


def _expired_drafts(now: datetime) -> sa.ColumnElement[bool]:
    s = get_settings()
    grace = timedelta(days=s.draft_grace_days)
    ttl = timedelta(hours=s.draft_ttl_hours)
    return sa.or_(conversation_drafts.c.expires_at < now - grace,
                  sa.and_(conversation_drafts.c.expires_at.is_(None),
                          conversation_drafts.c.updated_at < now - ttl - grace))


def may_clean_up(actor: Actor | None = None) -> bool:
    """Whether the actor (default: the running code's) may apply the cleanup (an admin, or the system)."""
    return may(actor or current_actor(), Action.APPLY, Kind.CLEANUP)


def cleanup_preview(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """How many rows `apply_cleanup` would remove now (everyone's), by kind; removes nothing."""
    now = now or utcnow()
    with acting_as(system_actor()), read_conn(engine) as conn:
        out = {
            "checkpoints": int(conn.execute(sa.select(sa.func.count()).select_from(recovery_checkpoints)
                                            .where(_expired_checkpoints(now))).scalar_one()),
            "drafts": int(conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts)
                                       .where(_expired_drafts(now))).scalar_one()),
        }
        out["error_logs"] = int(retention_preview(engine, now)["total"])
    return out


def apply_cleanup(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """Remove expired checkpoints, drafts and error log rows (admins and the system); how many of each went.

    Runs as the system (it removes everyone's expired rows). The audit row names who applied it
    and is written in the transaction that removes the drafts and checkpoints, after the error
    logs' retention (chunks of their own transactions, resumable from their checkpoint): a cleanup
    that fails leaves no audit row; error logs it had already removed are recorded by the retention's
    own checkpoint. The system's own runs (the workers' interval) write a row only when they removed
    something.
    """
    actor = current_actor(engine)
    require(actor, Action.APPLY, Kind.CLEANUP, None, missing="Only an admin can apply the cleanup.")
    now = now or utcnow()
    system = system_actor()
    with acting_as(system):
        # chunks of their own transactions, not one: a retry by run_db resumes from the checkpoint
        error_logs = int(run_db(apply_retention, engine, now)["total"])

        def _checkpoints_and_drafts() -> dict[str, int]:
            with write_tx(engine, actor=system) as conn:
                checkpoints = conn.execute(recovery_checkpoints.delete().where(_expired_checkpoints(now))).rowcount
                expired = sa.select(conversation_drafts.c.id).where(_expired_drafts(now))
                # the conversation is the durable result: it stays, only its link to the draft goes
                conn.execute(conversations.update().where(conversations.c.draft_id.in_(expired))
                             .values(draft_id=None))
                drafts = conn.execute(conversation_drafts.delete().where(_expired_drafts(now))).rowcount
                out = {"checkpoints": int(checkpoints), "drafts": int(drafts), "error_logs": error_logs}
                if actor.is_person or any(out.values()):
                    audit(conn, AuditAction.CLEANUP_APPLY, "cleanup", None, {"removed": out}, actor=actor)
            return out

        return run_db(_checkpoints_and_drafts)
