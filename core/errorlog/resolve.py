"""Mark errors resolved or unresolved: by id, or a whole fingerprint group in chunks that resume."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from core.config import get_settings
from core.errorlog.filters import Bind, invalid
from core.store.resumable import advance, begin, finish
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["set_resolved"]


def set_resolved(
    bind: Bind,
    *,
    error_ids: Sequence[str] = (),
    fingerprint: str | None = None,
    resolved: bool = True,
    user: str | None = None,
) -> int:
    """Mark rows (by error id, or a whole fingerprint group) resolved or unresolved.

    Returns how many rows changed state. Exactly one of `error_ids` / `fingerprint`.
    A whole group on an Engine is resolved in chunks that resume (see `_resolve_group`).
    """
    ids = [error_ids] if isinstance(error_ids, str) else list(error_ids)
    if bool(ids) == bool(fingerprint):
        raise invalid("error_ids", "Give either error ids or a fingerprint to resolve.")
    c = error_logs.c
    values = {
        "resolved": resolved,
        "resolved_at": datetime.now(UTC) if resolved else None,
        "resolved_by": (user or get_settings().user_name) if resolved else None,
    }
    if fingerprint and isinstance(bind, Engine):
        return _resolve_group(bind, fingerprint, values)
    chunk = 500  # stay well inside every engine's bound-parameter limit
    targets = [c.fingerprint == fingerprint] if fingerprint else [
        c.error_id.in_(ids[i:i + chunk]) for i in range(0, len(ids), chunk)]

    def run(conn: Connection) -> int:
        return sum(conn.execute(update(error_logs).where(t, c.resolved.is_not(resolved)).values(**values)).rowcount
                   for t in targets)

    if isinstance(bind, Connection):
        return run(bind)
    with write_tx(bind) as conn:
        return run(conn)


def _resolve_group(engine: Engine, fingerprint: str, values: dict[str, Any]) -> int:
    """Resolve (or unresolve) a fingerprint group of any size, settings.checkpoint_chunk_rows rows a transaction.

    The checkpoint (core.store.resumable) keeps the first run's time and user: an interrupted
    "resolve all" asked again continues after the last row it changed, and every row of the
    group ends with the same resolved_at and resolved_by. Returns the rows changed over all runs.
    """
    c = error_logs.c
    resolved = bool(values["resolved"])
    at = values["resolved_at"]
    cp = begin(engine, "resolve" if resolved else "unresolve", fingerprint,
               {"resolved_at": at.isoformat() if at else None, "resolved_by": values["resolved_by"]})
    if cp.resumed:
        at = cp.params.get("resolved_at")
        values = {**values, "resolved_at": datetime.fromisoformat(at) if at else None,
                  "resolved_by": cp.params.get("resolved_by")}
    chunk = get_settings().checkpoint_chunk_rows
    while True:
        with write_tx(engine) as conn:
            pick = (select(c.id).where(c.fingerprint == fingerprint, c.resolved.is_not(resolved),
                                       c.id > (cp.after or 0)).order_by(c.id).limit(chunk))
            changed = [int(i) for i in conn.execute(update(error_logs).where(c.id.in_(pick.scalar_subquery()))
                                                    .values(**values).returning(c.id)).scalars()]
            cp = advance(conn, cp, done=len(changed), after=max(changed, default=cp.after))
        if len(changed) < chunk:
            break
    finish(engine, cp)
    return cp.done
