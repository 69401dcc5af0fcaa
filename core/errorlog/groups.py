"""Errors grouped by fingerprint: one line per kind of error, with its counts and latest example."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from core.config import get_settings
from core.errorlog.filters import (
    SEVERITY_ORDER,
    Bind,
    ErrorFilter,
    as_utc,
    bind_connection,
    filter_conditions,
    invalid,
    searched,
    severity_rank,
)
from core.store.paging import Page
from core.store.schema import error_logs

__all__ = ["GROUP_SORTS", "error_groups", "error_groups_page"]

# what the groups can be sorted by (largest or latest first); ties by the latest seen
GROUP_SORTS = ("last_seen", "count", "first_seen", "severity")


def error_groups(
    bind: Bind, flt: ErrorFilter | None = None, *, limit: int = 50, sort: str = "last_seen"
) -> list[dict[str, Any]]:
    """Rows matching `flt` grouped by fingerprint, most recently seen first (or by `sort`, descending).

    Each group: fingerprint, count, first_seen, last_seen, severity (the highest seen),
    batches (distinct batch ids), unresolved, and from its latest row: message,
    error_type, error_code, component, error_id.
    """
    return error_groups_page(bind, flt, page=1, page_size=limit, sort=sort).rows


def error_groups_page(
    bind: Bind, flt: ErrorFilter | None = None, *, page: int = 1, page_size: int = 50, sort: str = "last_seen"
) -> Page:
    """Page `page` of the groups `error_groups` lists, and how many groups the filters select in all."""
    most = get_settings().log_page_size_max
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= most:
        raise invalid("limit", f"limit must be a whole number from 1 to {most}.")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise invalid("page", "page must be a whole number from 1.")
    if sort not in GROUP_SORTS:
        raise invalid("sort", f"sort must be one of {', '.join(GROUP_SORTS)}.")
    c = error_logs.c
    last_seen = func.max(c.created_at).label("last_seen")
    count = func.count().label("count")
    first_seen = func.min(c.created_at).label("first_seen")
    rank = func.max(severity_rank(c.severity)).label("severity_rank")
    order = {"last_seen": [], "count": [count.desc()], "first_seen": [first_seen.desc()],
             "severity": [rank.desc()]}[sort]
    with bind_connection(bind) as conn:
        conds = filter_conditions(conn, flt)
        groups = conn.execute(searched(conn, flt,
            select(
                c.fingerprint,
                count,
                first_seen,
                last_seen,
                rank,
                func.count(c.operation_id.distinct()).label("batches"),
                func.sum(case((c.resolved.is_(False), 1), else_=0)).label("unresolved"),
                # over the grouped rows: how many groups in all, from the same pass as the page
                func.count().over().label("groups_total"),
            )
            .where(*conds)
            .group_by(c.fingerprint)
            .order_by(*order, last_seen.desc(), c.fingerprint)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )).all()
        if groups:
            total = int(groups[0].groups_total)
        else:  # a page past the last: count the groups alone
            total = int(conn.execute(searched(conn, flt, select(func.count(c.fingerprint.distinct()))
                                              .where(*conds))).scalar_one())
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
            level = int(g.severity_rank)
            out.append({
                "fingerprint": g.fingerprint,
                "count": int(g._mapping["count"]),
                "first_seen": as_utc(g.first_seen, "first_seen"),
                "last_seen": as_utc(g.last_seen, "last_seen"),
                "severity": SEVERITY_ORDER[level] if 0 <= level < len(SEVERITY_ORDER) else "unknown",
                "batches": int(g.batches),
                "unresolved": int(g.unresolved or 0),
                "error_id": sample.error_id if sample else None,
                "message": sample.message if sample else "",
                "error_type": sample.error_type if sample else "",
                "error_code": sample.error_code if sample else "",
                "component": sample.component if sample else None,
            })
    return Page(out, total, page, page_size)
