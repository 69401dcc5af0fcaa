"""The error list: one page of matching rows with their total, and one whole row by its id."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from core.config import get_settings
from core.errorlog.filters import (
    FTS_TABLE,
    Bind,
    ErrorFilter,
    bind_connection,
    filter_conditions,
    invalid,
    label_matches,
    ordering,
    rollup_conditions,
    rollup_hour,
    rollup_serves,
    searched,
    visible,
)
from core.store.dialect import FTS_PROBE_MIN_MATCHES, count_text_matches
from core.store.paging import Page
from core.store.schema import error_log_rollup, error_logs

__all__ = ["LIST_COLUMNS", "get_error", "search_errors"]

# the list view leaves out the (large) stack trace; get_error returns everything
LIST_COLUMNS = tuple(c for c in error_logs.c if c.name != "stack_trace")


def _count_by_rollup(conn: Connection, flt: ErrorFilter | None) -> int | None:
    """The number of rows matching `flt` from the hourly rollup, or None if it cannot answer.

    It can when `flt` only narrows by type, severity, code, resolved and time, for an actor
    who sees every row: whole hours are summed from error_log_rollup, the part hours at
    either end counted from the rows.
    """
    flt = flt or ErrorFilter()
    if not rollup_serves(conn, flt):
        return None
    r = error_log_rollup.c
    conds = rollup_conditions(flt)
    edges: list[tuple[datetime | None, datetime | None]] = []
    if flt.since is not None:
        start = flt.since.replace(minute=0, second=0, microsecond=0)
        if start < flt.since:
            start += timedelta(hours=1)
        conds.append(r.bucket >= rollup_hour(start))
        edges.append((flt.since, start))
    if flt.until is not None:
        end = flt.until.replace(minute=0, second=0, microsecond=0)
        conds.append(r.bucket < rollup_hour(end))
        edges.append((max(end, flt.since) if flt.since else end, flt.until))
    if flt.since is not None and flt.until is not None and flt.until - flt.since < timedelta(hours=2):
        # no whole hour in between (or barely): count the rows, the rollup adds nothing
        return None
    total = int(conn.execute(select(func.coalesce(func.sum(r.n), 0)).where(*conds)).scalar_one())
    for lo, hi in edges:
        if lo is not None and hi is not None and lo < hi:
            edge = dataclasses.replace(flt, since=lo, until=hi)
            total += int(conn.execute(select(func.count()).select_from(error_logs)
                                      .where(*filter_conditions(conn, edge))).scalar_one())
    return total


def _count_text_only(conn: Connection, flt: ErrorFilter | None) -> int | None:
    """The count of a search by text alone from the text index, or None if it cannot answer.

    The index counts every person's rows, so it answers only for an actor who sees them all.
    """
    if (flt is None or not flt.search or visible(conn) or flt.kind == "event" or flt != ErrorFilter(search=flt.search, kind=flt.kind)
            or label_matches(conn, flt.search) != ([], [])):
        return None
    counter = count_text_matches(conn, flt.search, fts_table=FTS_TABLE)
    if counter is None:
        return None
    total = int(conn.execute(counter).scalar_one())
    if flt.kind == "error":  # the index counts the events too: a few rows, found by their code
        events = dataclasses.replace(flt, kind="event")
        total -= int(conn.execute(select(func.count()).select_from(error_logs)
                                  .where(*filter_conditions(conn, events, use_text_index=False))).scalar_one())
    return total


def search_errors(
    bind: Bind, flt: ErrorFilter | None = None, *, page: int = 1, page_size: int = 50, order: str = "newest",
    sort: str = "time",
) -> Page:
    """One page of rows matching `flt` and the total count, sorted over all of them.

    `sort` is one of SORTS (time by default); `order` "newest" sorts descending, "oldest" ascending.
    """
    max_size = get_settings().log_page_size_max
    if not isinstance(page, int) or page < 1:
        raise invalid("page", "page must be a whole number from 1.")
    if not isinstance(page_size, int) or not 1 <= page_size <= max_size:
        raise invalid("page_size", f"page_size must be a whole number from 1 to {max_size}.")
    order_by = ordering(order, sort)
    with bind_connection(bind) as conn:
        total = _count_text_only(conn, flt)
        if total is None:
            total = _count_by_rollup(conn, flt)
        if total is None:
            total = conn.execute(searched(conn, flt, select(func.count()).select_from(error_logs)
                                          .where(*filter_conditions(conn, flt)))).scalar_one()
        conds = filter_conditions(conn, flt, many_matches=total >= FTS_PROBE_MIN_MATCHES)
        stmt = (select(*LIST_COLUMNS).where(*conds).order_by(*order_by)
                .limit(page_size).offset((page - 1) * page_size))
        rows = [dict(r._mapping) for r in conn.execute(searched(conn, flt, stmt))]
    return Page(rows=rows, total=int(total), page=page, page_size=page_size)


def get_error(bind: Bind, error_id: str) -> dict[str, Any] | None:
    """The whole row for `error_id` (the id shown to users), or None (also when it is not the actor's to see)."""
    with bind_connection(bind) as conn:
        row = conn.execute(select(error_logs).where(error_logs.c.error_id == error_id, *visible(conn))).first()
    return dict(row._mapping) if row is not None else None
