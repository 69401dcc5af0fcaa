"""Mark errors resolved or unresolved: by id, or a whole fingerprint group in chunks that resume.

Only rows the actor may resolve are touched (an analyst's own and the system's; an admin's, every
row); an id the actor may not see answers "not found", as an id that does not exist. The rows
carry the actor's id as `resolved_by`, and each action writes one audit row in the transaction
that changes the rows (for a group, the one that changes its last rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, select, update

from core.auth.actor import Actor
from core.auth.audit import AuditAction, audit
from core.auth.permissions import Action
from core.config import get_settings
from core.errorlog.filters import Bind, invalid, viewer, visible
from core.errors import NotFoundError
from core.store.resumable import advance, begin, finish
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["set_resolved"]

_CHUNK_IDS = 500  # ids per statement: well inside every engine's bound-parameter limit
_AUDITED_IDS = 20  # the audit row names this many of the ids it changed, and counts them all


def set_resolved(
    bind: Bind,
    *,
    error_ids: Sequence[str] = (),
    fingerprint: str | None = None,
    resolved: bool = True,
) -> int:
    """Mark rows (by error id, or a whole fingerprint group) resolved or unresolved, as the running actor.

    Returns how many rows changed state. Exactly one of `error_ids` / `fingerprint`. Raises
    NotFoundError, changing nothing, when an id names no row the actor may resolve. A whole
    group on an Engine is resolved in chunks that resume (see `_resolve_group`).
    """
    ids = [error_ids] if isinstance(error_ids, str) else list(dict.fromkeys(error_ids))
    if bool(ids) == bool(fingerprint):
        raise invalid("error_ids", "Give either error ids or a fingerprint to resolve.")
    actor = viewer(bind)
    values = {
        "resolved": resolved,
        "resolved_at": datetime.now(UTC) if resolved else None,
        "resolved_by": actor.user_id if resolved and not actor.system else None,
    }
    if fingerprint and isinstance(bind, Engine):
        return _resolve_group(bind, actor, fingerprint, values)

    def run(conn: Connection) -> int:
        c = error_logs.c
        mine = visible(conn, Action.RESOLVE)
        if fingerprint:
            targets: list[ColumnElement[bool]] = [c.fingerprint == fingerprint]
        else:
            targets = [c.error_id.in_(ids[i:i + _CHUNK_IDS]) for i in range(0, len(ids), _CHUNK_IDS)]
            _require_all(conn, ids, targets, mine)
        changed = sum(int(conn.execute(update(error_logs).where(t, c.resolved.is_not(resolved), *mine)
                                       .values(**values)).rowcount or 0) for t in targets)
        _audit(conn, actor, resolved, ids, fingerprint, changed)
        return changed

    if isinstance(bind, Connection):
        return run(bind)
    with write_tx(bind) as conn:
        return run(conn)


def _require_all(conn: Connection, ids: list[str], targets: list[ColumnElement[bool]],
                 mine: list[ColumnElement[bool]]) -> None:
    """Refuse, as "not found", when any of `ids` is not a row the actor may resolve."""
    found: set[str] = set()
    for t in targets:
        found.update(conn.execute(select(error_logs.c.error_id).where(t, *mine)).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        shown = str(missing[0])[:64]
        message = f"No error with id {shown!r}." if len(missing) == 1 else \
            f"No error with id {shown!r} (and {len(missing) - 1} more)."
        raise NotFoundError(message, user_message=message, field="error_ids")


def _audit(conn: Connection, actor: Actor, resolved: bool, ids: list[str], fingerprint: str | None,
           changed: int) -> None:
    """The action's one audit row, on the transaction that changed the rows."""
    if fingerprint:
        action = AuditAction.ERROR_RESOLVE_ALL if resolved else AuditAction.ERROR_UNRESOLVE
        audit(conn, action, "error_group", fingerprint, {"fingerprint": fingerprint, "count": changed},
              actor=actor)
        return
    detail: dict[str, Any] = {"count": changed, "error_ids": ids[:_AUDITED_IDS]}
    if len(ids) > _AUDITED_IDS:
        detail["more_ids"] = len(ids) - _AUDITED_IDS
    audit(conn, AuditAction.ERROR_RESOLVE if resolved else AuditAction.ERROR_UNRESOLVE, "error",
          ids[0] if len(ids) == 1 else None, detail, actor=actor)


def _operation_id(fingerprint: str, actor: Actor) -> str:
    """The checkpoint of this actor's run over the group: each person's "resolve all" is their own."""
    who = "system" if actor.system or not actor.user_id else actor.user_id.replace("-", "")
    return f"{fingerprint}:{who}"[:64]


def _resolve_group(engine: Engine, actor: Actor, fingerprint: str, values: dict[str, Any]) -> int:
    """Resolve (or unresolve) a fingerprint group of any size, settings.checkpoint_chunk_rows rows a transaction.

    The checkpoint (core.store.resumable) keeps the first run's time: an interrupted "resolve
    all" asked again by the same actor continues after the last row it changed, and every row
    of the group ends with the same resolved_at. Only the rows the actor may resolve are
    changed. Returns the rows changed over all runs; the run that finishes writes the audit row.
    """
    c = error_logs.c
    resolved = bool(values["resolved"])
    at = values["resolved_at"]
    cp = begin(engine, "resolve" if resolved else "unresolve", _operation_id(fingerprint, actor),
               {"resolved_at": at.isoformat() if at else None, "fingerprint": fingerprint})
    if cp.resumed:
        at = cp.params.get("resolved_at")
        values = {**values, "resolved_at": datetime.fromisoformat(at) if at else None}
    chunk = get_settings().checkpoint_chunk_rows
    while True:
        with write_tx(engine, actor=actor) as conn:
            mine = visible(conn, Action.RESOLVE)
            pick = (select(c.id).where(c.fingerprint == fingerprint, c.resolved.is_not(resolved),
                                       c.id > (cp.after or 0), *mine).order_by(c.id).limit(chunk))
            changed = [int(i) for i in conn.execute(update(error_logs).where(c.id.in_(pick.scalar_subquery()))
                                                    .values(**values).returning(c.id)).scalars()]
            cp = advance(conn, cp, done=len(changed), after=max(changed, default=cp.after))
            if len(changed) < chunk:
                _audit(conn, actor, resolved, [], fingerprint, cp.done)
                break
    finish(engine, cp)
    return cp.done
