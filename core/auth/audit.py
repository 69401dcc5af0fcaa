"""The audit trail: one append-only row per audited action, in the action's own transaction; and its listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import Actor, current_actor
from core.auth.permissions import Action, Kind, where
from core.redact import redact, redact_cut
from core.store.paging import Page
from core.store.schema import audit_events, utcnow
from core.store.tx import read_conn

__all__ = ["SYSTEM", "AuditAction", "AuditFilter", "audit", "list_audit_events", "target_kinds"]

SYSTEM = "system"  # AuditFilter.actor_id for the rows the system wrote (no person)
_PAGE_SIZE_MAX = 200

_LABEL_MAX = 200


class AuditAction(StrEnum):
    BATCH_CREATE = "batch.create"
    BATCH_RESUME = "batch.resume"
    BATCH_RETRY_FAILED = "batch.retry_failed"
    BATCH_PAUSE = "batch.pause"
    BATCH_CANCEL = "batch.cancel"
    BATCH_BUDGET = "batch.budget"
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
    TEMPLATE_SAVE = "template.save"
    TEMPLATE_ARCHIVE = "template.archive"


def audit(conn: Connection, action: AuditAction, target_kind: str, target_id: str | None,
          detail: dict[str, Any] | None = None, *, actor: Actor | None = None) -> None:
    """Append one audit row on `conn` (the action's transaction: it commits or rolls back with it)."""
    who = actor or current_actor()
    conn.execute(audit_events.insert().values(
        created_at=utcnow(), actor_id=None if who.system else who.user_id,
        actor_label=redact_cut(who.label, _LABEL_MAX), action=action.value, target_kind=target_kind,
        target_id=None if target_id is None else str(target_id)[:64],
        detail=redact(detail) if detail else None))


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows to list: by whom (a user id, or SYSTEM), which actions, what target, and when."""

    actor_id: str | None = None
    actions: tuple[str, ...] = ()
    target_kind: str | None = None
    target_id: str | None = None  # the id, or its first characters
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        c = audit_events.c
        cond: list[sa.ColumnElement[bool]] = []
        if self.actor_id == SYSTEM:
            cond.append(c.actor_id.is_(None))
        elif self.actor_id:
            cond.append(c.actor_id == self.actor_id)
        if self.actions:
            cond.append(c.action.in_(self.actions))
        if self.target_kind:
            cond.append(c.target_kind == self.target_kind)
        if self.target_id and self.target_id.strip():
            # a prefix, as the pages show ids cut to 8 characters; wildcards in it match literally
            cond.append(c.target_id.startswith(self.target_id.strip()[:64], autoescape=True))
        if self.since is not None:
            cond.append(c.created_at >= self.since)
        if self.until is not None:
            cond.append(c.created_at < self.until)
        return cond


def list_audit_events(engine: Engine, flt: AuditFilter | None = None, *, page: int = 1, page_size: int = 50) -> Page:
    """One page of the audit rows the acting person may see (an admin: all; anyone else: their own), newest first."""
    flt = flt or AuditFilter()
    page, page_size = max(1, int(page)), max(1, min(int(page_size), _PAGE_SIZE_MAX))
    cond = [where(current_actor(engine), Action.VIEW, Kind.AUDIT, audit_events.c.actor_id), *flt.conditions()]
    with read_conn(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(audit_events).where(*cond)).scalar_one()
        rows = conn.execute(sa.select(audit_events).where(*cond)
                            .order_by(audit_events.c.created_at.desc(), audit_events.c.id.desc())
                            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([dict(r) for r in rows], int(total), page, page_size)


def target_kinds(engine: Engine) -> list[str]:
    """The kinds of target the audit rows the acting person may see name (batch, user, ...), sorted."""
    cond = where(current_actor(engine), Action.VIEW, Kind.AUDIT, audit_events.c.actor_id)
    with read_conn(engine) as conn:
        return sorted(conn.execute(sa.select(audit_events.c.target_kind).where(cond).distinct()).scalars())
