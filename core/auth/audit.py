"""The audit trail: one append-only row per audited action, in the action's own transaction."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from core.auth.actor import Actor, current_actor
from core.redact import redact, redact_cut
from core.store.schema import audit_events, utcnow

__all__ = ["AuditAction", "audit"]

_LABEL_MAX = 200


class AuditAction(StrEnum):
    BATCH_CREATE = "batch.create"
    BATCH_RESUME = "batch.resume"
    BATCH_RETRY_FAILED = "batch.retry_failed"
    BATCH_PAUSE = "batch.pause"
    BATCH_CANCEL = "batch.cancel"
    CONVERSATION_DELETE = "conversation.delete"
    REVIEW_DECISION = "review.decision"
    ERROR_RESOLVE = "error.resolve"
    ERROR_UNRESOLVE = "error.unresolve"
    ERROR_RESOLVE_ALL = "error.resolve_all"
    EXPORT_ERRORS_CSV = "export.errors_csv"
    EXPORT_CONVERSATIONS = "export.conversations"
    SETTINGS_CHANGE = "settings.change"
    CLEANUP_APPLY = "cleanup.apply"
    SIGN_IN = "user.sign_in"
    USER_ADD = "user.add"
    ROLE_CHANGE = "user.role_change"


def audit(conn: Connection, action: AuditAction, target_kind: str, target_id: str | None,
          detail: dict[str, Any] | None = None, *, actor: Actor | None = None) -> None:
    """Append one audit row on `conn` (the action's transaction: it commits or rolls back with it)."""
    who = actor or current_actor()
    conn.execute(audit_events.insert().values(
        created_at=utcnow(), actor_id=None if who.system else who.user_id,
        actor_label=redact_cut(who.label, _LABEL_MAX), action=action.value, target_kind=target_kind,
        target_id=None if target_id is None else str(target_id)[:64],
        detail=redact(detail) if detail else None))
