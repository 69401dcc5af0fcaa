"""Errors grouped by fingerprint: one line per kind of error, with its counts and latest example."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from core.config import get_settings
from core.errorlog.filters import (
    SEVERITY_ORDER,
    Bind,
    ErrorFilter,
    as_utc,
    bind_connection,
    filter_conditions,
    invalid,
)
from core.store.schema import error_logs

__all__ = ["error_groups"]


def _severity_rank(column: Any) -> ColumnElement[int]:
    return case({name: i for i, name in enumerate(SEVERITY_ORDER)}, value=column, else_=-1)


def error_groups(bind: Bind, flt: ErrorFilter | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
    """Rows matching `flt` grouped by fingerprint, most recently seen first.

    Each group: fingerprint, count, first_seen, last_seen, severity (the highest seen),
    batches (distinct batch ids), unresolved, and from its latest row: message,
    error_type, error_code, component, error_id.
    """
    if not isinstance(limit, int) or not 1 <= limit <= get_settings().log_page_size_max:
        raise invalid("limit", f"limit must be a whole number from 1 to {get_settings().log_page_size_max}.")
    c = error_logs.c
    last_seen = func.max(c.created_at).label("last_seen")
    with bind_connection(bind) as conn:
        conds = filter_conditions(conn, flt)
        groups = conn.execute(
            select(
                c.fingerprint,
                func.count().label("count"),
                func.min(c.created_at).label("first_seen"),
                last_seen,
                func.max(_severity_rank(c.severity)).label("severity_rank"),
                func.count(c.operation_id.distinct()).label("batches"),
                func.sum(case((c.resolved.is_(False), 1), else_=0)).label("unresolved"),
            )
            .where(*conds)
            .group_by(c.fingerprint)
            .order_by(last_seen.desc(), c.fingerprint)
            .limit(limit)
        ).all()
        # the latest row of each group: an index seek on (fingerprint, created_at); the text
        # condition is a plain recheck here, since the seek already narrows to a row or two
        recheck = filter_conditions(conn, flt, use_text_index=False)
        out = []
        for g in groups:
            sample = conn.execute(
                select(c.error_id, c.message, c.error_type, c.error_code, c.component)
                .where(c.fingerprint == g.fingerprint, c.created_at == g.last_seen, *recheck)
                .order_by(c.id.desc())
                .limit(1)
            ).first()
            rank = int(g.severity_rank)
            out.append({
                "fingerprint": g.fingerprint,
                "count": int(g._mapping["count"]),
                "first_seen": as_utc(g.first_seen, "first_seen"),
                "last_seen": as_utc(g.last_seen, "last_seen"),
                "severity": SEVERITY_ORDER[rank] if 0 <= rank < len(SEVERITY_ORDER) else "unknown",
                "batches": int(g.batches),
                "unresolved": int(g.unresolved or 0),
                "error_id": sample.error_id if sample else None,
                "message": sample.message if sample else "",
                "error_type": sample.error_type if sample else "",
                "error_code": sample.error_code if sample else "",
                "component": sample.component if sample else None,
            })
    return out
