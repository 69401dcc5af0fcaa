"""The one answer to "may actor U do action A on a row of kind K owned by O?" — and its SQL form.

Pages, services and the CLI ask here; Postgres enforces the same table with Row Level Security
(migration 0011), and on SQLite the `where()` clause below is the enforcement. What an actor may
not see answers exactly as what does not exist ("not found").

    kind          action                 analyst          reviewer         admin
    batch         view                   own              every            every
    batch         act (resume, pause,    own              own              every
                  cancel, retry), delete
    conversation  view, export           own              every            every
    conversation  review                 -                every            every
    conversation  delete                 own              own              every
    draft         view, act, delete      own              own              every
    checkpoint    view, act              own              own              every
    error         view, resolve, export  own + no user    own + no user    every
    audit         view                   own actions      own actions      every
    settings      view                   every            every            every
    settings      change                 -                -                every
    cleanup       apply                  -                -                every
    users         view, manage           -                -                every
    template      view, create (a new    every            every            every
                  template or version)
    template      archive                own (author of   own              every
                                         its latest version)

The system (worker, retention, recovery scans) may do everything; a signed-out visitor nothing.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from core.auth.actor import Actor, Role
from core.errors import ErrorCode, NotFoundError

__all__ = ["Action", "Kind", "Scope", "may", "require", "scope", "where"]


class Kind(StrEnum):
    BATCH = "batch"
    CONVERSATION = "conversation"
    DRAFT = "draft"
    CHECKPOINT = "checkpoint"
    ERROR = "error"
    AUDIT = "audit"
    SETTINGS = "settings"
    CLEANUP = "cleanup"
    USERS = "users"
    TEMPLATE = "template"


class Action(StrEnum):
    VIEW = "view"
    CREATE = "create"
    ACT = "act"  # resume, pause, cancel, retry failed; resume or discard a draft
    DELETE = "delete"
    EXPORT = "export"
    RESOLVE = "resolve"
    REVIEW = "review"
    CHANGE = "change"
    APPLY = "apply"
    MANAGE = "manage"
    ARCHIVE = "archive"


class Scope(Enum):
    NONE = "none"
    OWN = "own"
    OWN_OR_UNOWNED = "own or no user"
    EVERY = "every"


_A, _R = Role.ANALYST, Role.REVIEWER
_OWN = {_A: Scope.OWN, _R: Scope.OWN}
_EVERY_VIEWER = {_A: Scope.OWN, _R: Scope.EVERY}
_SHARED = {_A: Scope.OWN_OR_UNOWNED, _R: Scope.OWN_OR_UNOWNED}
_ALL = {_A: Scope.EVERY, _R: Scope.EVERY}
_ADMIN_ONLY: dict[Role, Scope] = {}

# (kind, action) -> what an analyst and a reviewer may reach; an admin reaches every row of
# every pair listed here. A pair that is not listed is refused to everyone but the system.
_RULES: dict[tuple[Kind, Action], dict[Role, Scope]] = {
    (Kind.BATCH, Action.VIEW): _EVERY_VIEWER,
    (Kind.BATCH, Action.CREATE): _OWN,
    (Kind.BATCH, Action.ACT): _OWN,
    (Kind.BATCH, Action.DELETE): _OWN,
    (Kind.CONVERSATION, Action.VIEW): _EVERY_VIEWER,
    (Kind.CONVERSATION, Action.EXPORT): _EVERY_VIEWER,
    (Kind.CONVERSATION, Action.CREATE): _OWN,
    (Kind.CONVERSATION, Action.REVIEW): {_R: Scope.EVERY},
    (Kind.CONVERSATION, Action.DELETE): _OWN,
    (Kind.DRAFT, Action.VIEW): _OWN,
    (Kind.DRAFT, Action.CREATE): _OWN,
    (Kind.DRAFT, Action.ACT): _OWN,
    (Kind.DRAFT, Action.DELETE): _OWN,
    (Kind.CHECKPOINT, Action.VIEW): _OWN,
    (Kind.CHECKPOINT, Action.CREATE): _OWN,
    (Kind.CHECKPOINT, Action.ACT): _OWN,
    (Kind.ERROR, Action.VIEW): _SHARED,
    (Kind.ERROR, Action.RESOLVE): _SHARED,
    (Kind.ERROR, Action.EXPORT): _SHARED,
    (Kind.AUDIT, Action.VIEW): _OWN,
    (Kind.SETTINGS, Action.VIEW): _ALL,
    (Kind.SETTINGS, Action.CHANGE): _ADMIN_ONLY,
    (Kind.CLEANUP, Action.APPLY): _ADMIN_ONLY,
    (Kind.USERS, Action.VIEW): _ADMIN_ONLY,
    (Kind.USERS, Action.MANAGE): _ADMIN_ONLY,
    (Kind.TEMPLATE, Action.VIEW): _ALL,
    (Kind.TEMPLATE, Action.CREATE): _ALL,
    (Kind.TEMPLATE, Action.ARCHIVE): _OWN,
}


def scope(actor: Actor, action: Action, kind: Kind) -> Scope:
    """Which rows of `kind` `actor` may do `action` on."""
    if actor.system:
        return Scope.EVERY
    rule = _RULES.get((kind, action))
    if rule is None or not actor.is_person:
        return Scope.NONE
    if actor.role is Role.ADMIN:
        return Scope.EVERY
    return rule.get(actor.role or Role.ANALYST, Scope.NONE)


def may(actor: Actor, action: Action, kind: Kind, owner_id: str | None = None) -> bool:
    """Whether `actor` may do `action` on a row of `kind` owned by `owner_id` (None: nobody's)."""
    s = scope(actor, action, kind)
    if s is Scope.EVERY:
        return True
    if s is Scope.NONE:
        return False
    if owner_id is None:
        return s is Scope.OWN_OR_UNOWNED
    return owner_id == actor.user_id


def where(actor: Actor, action: Action, kind: Kind, owner: Any) -> ColumnElement[bool]:
    """The SQL condition on the owner column `owner` that keeps the rows `may()` allows."""
    s = scope(actor, action, kind)
    if s is Scope.EVERY:
        return sa.true()
    if s is Scope.NONE:
        return sa.false()
    mine = owner == actor.user_id
    return sa.or_(mine, owner.is_(None)) if s is Scope.OWN_OR_UNOWNED else mine


def require(actor: Actor, action: Action, kind: Kind, owner_id: str | None, *, missing: str,
            code: ErrorCode = ErrorCode.NOT_FOUND, field: str | None = None) -> None:
    """Refuse with `missing` (the message a row that does not exist gets) unless `may()` allows it."""
    if not may(actor, action, kind, owner_id):
        raise NotFoundError(missing, code=code, field=field, user_message=missing)
