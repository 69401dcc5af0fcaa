"""Retention: how many error-log rows are past their keep time, and removing them in chunks that resume.

Removing them is a cleanup: an admin's or the system's (core.auth.permissions); the preview counts
the rows the actor sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, select

from core.auth.actor import current_actor
from core.auth.permissions import Action, Kind, require
from core.config import get_settings
from core.errorlog.filters import Bind, as_utc, bind_connection, visible
from core.errors import Severity
from core.store.resumable import advance, begin, finish
from core.store.schema import error_log_rollup, error_logs
from core.store.tx import write_tx

__all__ = ["apply_retention", "retention_preview"]


@dataclass(frozen=True)
class _Retention:
    now: datetime
    error_cutoff: datetime
    other_cutoff: datetime
    conditions: dict[str, ColumnElement[bool]] = field(default_factory=dict)


_LONG_KEPT = (Severity.ERROR.value, Severity.CRITICAL.value)


def _retention(now: datetime | None) -> _Retention:
    s = get_settings()
    now_utc = as_utc(now, "now") or datetime.now(UTC)
    r = _Retention(now_utc, now_utc - timedelta(days=s.retention_days_error),
                   now_utc - timedelta(days=s.retention_days_other))
    c = error_logs.c
    r.conditions["error_or_critical"] = and_(c.severity.in_(_LONG_KEPT), c.created_at < r.error_cutoff)
    r.conditions["other"] = and_(c.severity.not_in(_LONG_KEPT), c.created_at < r.other_cutoff)
    return r


def _retention_report(r: _Retention, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "now": r.now.isoformat(),
        "error_cutoff": r.error_cutoff.isoformat(),
        "other_cutoff": r.other_cutoff.isoformat(),
        **counts,
        "total": sum(counts.values()),
    }


def retention_preview(bind: Bind, now: datetime | None = None) -> dict[str, Any]:
    """How many rows retention would remove now (error/critical and the rest), removing none."""
    r = _retention(now)
    with bind_connection(bind) as conn:
        counts = {k: int(conn.execute(select(func.count()).select_from(error_logs).where(cond, *visible(conn)))
                             .scalar_one()) for k, cond in r.conditions.items()}
    return _retention_report(r, counts)


def apply_retention(bind: Engine, now: datetime | None = None) -> dict[str, Any]:
    """Remove rows past retention (settings.retention_days_error / _other), in chunks that resume.

    Each chunk of settings.checkpoint_chunk_rows rows is one transaction that also advances
    the operation's checkpoint (core.store.resumable), so the write lock is held briefly
    however many rows go. Interrupted, the next call resumes with the first call's cut-offs
    (its `now`, not this one's). Returns the same report as `retention_preview`, with the
    numbers removed over every run. Only an admin or the system may; anyone else is refused
    before anything is removed.
    """
    require(current_actor(bind), Action.APPLY, Kind.CLEANUP, None, missing="Only an admin can apply retention.")
    first = _retention(now)
    cp = begin(bind, "retention", "error_logs", {"now": first.now.isoformat()})
    r = _retention(datetime.fromisoformat(cp.params["now"])) if cp.resumed else first
    chunk = get_settings().checkpoint_chunk_rows
    counts = {k: int(cp.progress.get(k, 0)) for k in r.conditions}
    keys = list(r.conditions)
    for key in keys[keys.index(cp.after):] if cp.after in keys else keys:  # skip the kinds already done
        while True:
            with write_tx(bind) as conn:
                pick = select(error_logs.c.id).where(r.conditions[key]).order_by(error_logs.c.id).limit(chunk)
                removed = int(conn.execute(delete(error_logs).where(error_logs.c.id.in_(pick.scalar_subquery())))
                              .rowcount)
                counts[key] += removed
                cp = advance(conn, cp, done=removed, after=key, **{key: counts[key]})
            if removed < chunk:
                break
    with write_tx(bind) as conn:
        # the triggers left zero counts behind for the hours emptied
        conn.execute(delete(error_log_rollup).where(error_log_rollup.c.n <= 0))
    finish(bind, cp)
    return _retention_report(r, counts)
