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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.batches.states import ITEM_STATES, is_interrupted, shown_state
from core.config import get_settings
from core.errorlog import apply_retention, retention_preview
from core.resilience import run_db
from core.store.schema import (
    batch_items,
    batch_jobs,
    conversation_drafts,
    conversations,
    recovery_checkpoints,
    utcnow,
)
from core.store.tx import write_tx

__all__ = [
    "apply_cleanup",
    "cleanup_preview",
    "find_failed_batches",
    "find_interrupted_batches",
    "find_orphaned_conversations",
    "find_orphaned_drafts",
    "find_paused_batches",
    "needs_attention",
    "scan",
]


def _finding(kind: str, id_: str, what: str, action_text: str, action: str, **details: Any) -> dict[str, Any]:
    return {"kind": kind, "id": id_, "what_happened": what, "recommended_action": action_text, "action": action,
            "details": details}


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


def _batches(engine: Engine, *where: sa.ColumnElement[bool]) -> list[tuple[Any, dict[str, Any]]]:
    """The batches `where` selects, newest first, each with its item counts by status."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(batch_jobs).where(*where).order_by(batch_jobs.c.updated_at.desc())
                            ).mappings().all()
        counts = _item_counts(conn, [r["id"] for r in rows])
    return [(r, counts[r["id"]]) for r in rows]


def find_interrupted_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Running batches whose worker is gone: lease expired and no item changed since (see `is_interrupted`)."""
    now = now or utcnow()
    out = []
    for r, c in _batches(engine, batch_jobs.c.status == "running", sa.or_(
        batch_jobs.c.lease_expires_at.is_(None), batch_jobs.c.lease_expires_at < now)):
        if not is_interrupted(r["status"], r["lease_expires_at"], c[_LAST_CHANGE], now):
            continue  # its lease is late but its items still move: a busy worker, not a dead one
        left = c.get("pending", 0) + c.get("running", 0)
        since = r["lease_expires_at"] or r["updated_at"]
        out.append(_finding(
            "interrupted_batch", r["id"],
            f"The worker running '{r['name']}' stopped (crash, restart or shutdown) with {c.get('done', 0)} of "
            f"{r['total_items']} items done and {left} left; its lease ran out at {since.isoformat()}.",
            "Nothing is lost. A running worker picks it up by itself; if none is running, resume it "
            "(or start `python -m core worker`).", "resume",
            name=r["name"], done=c.get("done", 0), remaining=left, last_owner=r["lease_owner"]))
    return out


def _reason(row: Any, counts: dict[str, Any], now: datetime) -> str | None:
    """The reason the Batches page shows for the same row and counts."""
    return shown_state(row["status"], row["status_reason"], counts, interrupted=False, pause_kind=row["pause_kind"],
                       now=now)[1]


def find_failed_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Failed batches, with why and whether retrying the failed items or a plain resume is the fix."""
    now = now or utcnow()
    out = []
    for r, c in _batches(engine, batch_jobs.c.status == "failed"):
        failed = c.get("failed", 0)
        if failed:
            action_text, action = f"Retry the {failed} failed items (done items are kept).", "retry_failed"
        else:
            action_text, action = ("Fix what the reason names (the API key comes from the environment or "
                                   ".streamlit/secrets.toml), then resume."), "resume"
        out.append(_finding("failed_batch", r["id"], _reason(r, c, now) or "The batch failed.", action_text,
                            action, name=r["name"], done=c.get("done", 0), failed=failed,
                            pending=c.get("pending", 0)))
    return out


def find_paused_batches(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Paused batches: by a user (resume when ready) or by the breaker (continues by itself)."""
    now = now or utcnow()
    out = []
    for r, c in _batches(engine, batch_jobs.c.status == "paused"):
        if r["pause_kind"] == "breaker":
            action_text, action = ("No action needed: it continues by itself when the model service recovers; "
                                   "\"Resume now\" tries at once."), "wait"
        else:
            action_text, action = "Resume it when you are ready.", "resume"
        out.append(_finding("paused_batch", r["id"], _reason(r, c, now) or "The batch is paused.", action_text,
                            action, name=r["name"], pause_kind=r["pause_kind"], done=c.get("done", 0),
                            remaining=c.get("pending", 0) + c.get("running", 0)))
    return out


def find_orphaned_drafts(engine: Engine, now: datetime | None = None, *, user: str | None = None,
                         ) -> list[dict[str, Any]]:
    """In-progress drafts with no save for settings.orphan_draft_minutes."""
    now = now or utcnow()
    cutoff = now - timedelta(minutes=get_settings().orphan_draft_minutes)
    query = sa.select(conversation_drafts.c.id, conversation_drafts.c.user_id, conversation_drafts.c.template,
                      conversation_drafts.c.progress, conversation_drafts.c.updated_at,
                      sa.func.length(conversation_drafts.c.partial_text).label("chars")).where(
        conversation_drafts.c.status == "in_progress", conversation_drafts.c.updated_at < cutoff)
    if user:
        query = query.where(conversation_drafts.c.user_id == user)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(conversation_drafts.c.updated_at.desc())).mappings().all()
    return [_finding(
        "orphaned_draft", r["id"],
        f"A {r['template']} generation by {r['user_id']} stopped at {round(float(r['progress']) * 100)}% "
        f"({r['chars'] or 0} characters) and was last saved {r['updated_at'].isoformat()}: the tab was closed "
        "or the server stopped.",
        "Resume it (it continues from the saved text) or discard it.", "resume_draft",
        user=r["user_id"], progress=float(r["progress"]), chars=int(r["chars"] or 0)) for r in rows]


# every item state but done, spelled out: an IN list reads the index, a != does not
_NOT_DONE = tuple(state for state in ITEM_STATES if state != "done")


def find_orphaned_conversations(engine: Engine, *, limit: int = 1_000, deep: bool = False) -> list[dict[str, Any]]:
    """Conversations whose batch item or draft does not agree they exist (see the module docstring).

    Each check starts from an index, never from every conversation: the items not done of each
    batch joined to the one conversation their (batch, index) may have; conversations without
    a batch but with an item index; conversations linked to a draft. `deep` adds what no index
    answers, a done item that does not name its own conversation (only a manual edit does
    that): it reads every done item.
    """
    c, i, d = conversations, batch_items, conversation_drafts
    by_item = sa.and_(c.c.batch_id == i.c.batch_id, c.c.item_index == i.c.item_index)
    columns = (c.c.id, c.c.batch_id, c.c.item_index, i.c.status, i.c.conversation_id)
    # batch_id IN (...) AND status IN (...): seeks in the items' (batch_id, status, item_index) index
    out_of_step = [sa.and_(i.c.batch_id.in_(sa.select(batch_jobs.c.id)), i.c.status.in_(_NOT_DONE))]
    if deep:
        out_of_step.append(sa.and_(i.c.status == "done", sa.or_(i.c.conversation_id.is_(None),
                                                                i.c.conversation_id != c.c.id)))
    item_checks = [sa.select(*columns).select_from(i).join(c, by_item).where(cond).limit(limit) for cond in out_of_step]
    batch_deleted = sa.select(c.c.id, c.c.item_index).where(
        c.c.batch_id.is_(None), c.c.item_index.is_not(None)).limit(limit)
    draft_missing = (sa.select(c.c.id, c.c.draft_id).outerjoin(d, d.c.id == c.c.draft_id)
                     .where(c.c.draft_id.is_not(None), d.c.id.is_(None)).limit(limit))
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for r in (r for query in item_checks for r in conn.execute(query).mappings()):
            out.append(_finding(
                "orphaned_conversation", r["id"],
                f"Conversation for item {r['item_index']} of batch {r['batch_id']} is saved, but the item is "
                f"'{r['status']}'" + (" and points at another conversation." if r["conversation_id"] else "."),
                "The conversation is complete: mark the item done (do not generate it again).", "mark_item_done",
                reason="item_not_done", batch_id=r["batch_id"], item_index=r["item_index"]))
        for r in conn.execute(batch_deleted).mappings():
            out.append(_finding(
                "orphaned_conversation", r["id"],
                f"Conversation for item {r['item_index']} of a batch that was deleted.",
                "Keep it (it exports like any other) or delete it.", "keep_or_delete", reason="batch_deleted"))
        for r in conn.execute(draft_missing).mappings():
            out.append(_finding(
                "orphaned_conversation", r["id"],
                f"Conversation linked to draft {r['draft_id']}, which no longer exists.",
                "Nothing to recover: the conversation is complete. Clearing the link is optional.", "none",
                reason="draft_missing", draft_id=r["draft_id"]))
    return out


def needs_attention(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """How many batches and drafts the Recovery page lists, by kind (Home shows these, so both agree)."""
    now = now or utcnow()
    return {
        "interrupted_batches": len(find_interrupted_batches(engine, now)),
        "failed_batches": len(find_failed_batches(engine, now)),
        "paused_batches": len(find_paused_batches(engine, now)),
        "orphaned_drafts": len(find_orphaned_drafts(engine, now)),
    }


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


def cleanup_preview(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """How many rows `apply_cleanup` would remove now, by kind; removes nothing."""
    now = now or utcnow()
    with engine.connect() as conn:
        out = {
            "checkpoints": int(conn.execute(sa.select(sa.func.count()).select_from(recovery_checkpoints)
                                            .where(_expired_checkpoints(now))).scalar_one()),
            "drafts": int(conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts)
                                       .where(_expired_drafts(now))).scalar_one()),
        }
    out["error_logs"] = int(retention_preview(engine, now)["total"])
    return out


def apply_cleanup(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """Remove expired checkpoints, drafts and error log rows; how many of each were removed."""
    now = now or utcnow()

    def _checkpoints_and_drafts() -> dict[str, int]:
        with write_tx(engine) as conn:
            checkpoints = conn.execute(recovery_checkpoints.delete().where(_expired_checkpoints(now))).rowcount
            expired = sa.select(conversation_drafts.c.id).where(_expired_drafts(now))
            # the conversation is the durable result: it stays, only its link to the draft goes
            conn.execute(conversations.update().where(conversations.c.draft_id.in_(expired)).values(draft_id=None))
            drafts = conn.execute(conversation_drafts.delete().where(_expired_drafts(now))).rowcount
        return {"checkpoints": int(checkpoints), "drafts": int(drafts)}

    out = run_db(_checkpoints_and_drafts)
    # chunks of their own transactions, not one: a retry by run_db resumes from the checkpoint
    out["error_logs"] = int(run_db(apply_retention, engine, now)["total"])
    return out
