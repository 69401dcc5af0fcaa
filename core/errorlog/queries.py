"""Error-log queries: paged search, statistics, groups by fingerprint, resolve, retention.

Every function takes an Engine or a Connection and runs one SQLAlchemy Core query per
question on both engines; the differences (text search, time buckets) live in
`core.store.dialect`. Time ranges are half-open: ``since <= created_at < until``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, delete, func, literal, select, update

from core.config import get_settings
from core.errors import ERROR_TYPES, AppError, Severity, ValidationError
from core.store.dialect import FTS_PROBE_MIN_MATCHES, contains_text, count_text_matches, time_bucket
from core.store.paging import Page
from core.store.resumable import advance, begin, finish
from core.store.schema import error_log_rollup, error_logs
from core.store.tx import write_tx

__all__ = [
    "ErrorFilter",
    "Page",
    "SEVERITY_ORDER",
    "ERROR_TYPE_NAMES",
    "LIST_COLUMNS",
    "bind_connection",
    "filter_conditions",
    "ordering",
    "search_errors",
    "error_stats",
    "error_groups",
    "get_error",
    "set_resolved",
    "retention_preview",
    "apply_retention",
]

# lowest to highest; the groups view reports the highest severity seen in a group
SEVERITY_ORDER: tuple[str, ...] = tuple(s.value for s in Severity)
# AppError itself carries error_type "internal"
ERROR_TYPE_NAMES: tuple[str, ...] = (*ERROR_TYPES, AppError.error_type)
FTS_TABLE = "error_logs_fts"  # SQLite FTS5 trigram index over error_logs.message (migration 0001)
TOP_CODES = 10
ORDERS = ("newest", "oldest")
# the list view leaves out the (large) stack trace; get_error returns everything
LIST_COLUMNS = tuple(c for c in error_logs.c if c.name != "stack_trace")

Bind = Engine | Connection


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(message, field=field_name, user_message=message)


def _as_utc(value: datetime | None, field_name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _invalid(field_name, f"{field_name} must be a date and time, not {value!r}.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _names(values: Iterable[str] | str | None, field_name: str, allowed: Sequence[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    items = (values,) if isinstance(values, str) else tuple(values)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _invalid(field_name, f"{field_name} must be a list of non-empty names.")
        name = item.strip()
        if allowed is not None and name not in allowed:
            raise _invalid(field_name, f"Unknown {field_name} {name!r}: use one of {', '.join(allowed)}.")
        if len(name) > 128:
            raise _invalid(field_name, f"{field_name} {name[:20]!r}... is longer than 128 characters.")
        if name not in out:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class ErrorFilter:
    """What the error log is narrowed to. Validated (and normalised) on construction.

    Empty fields do not filter. `search` is matched literally and case-insensitively
    against the message; list fields match any of their values; `resolved` None means both.
    """

    search: str = ""
    types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    resolved: bool | None = None
    request_id: str | None = None
    operation_id: str | None = None  # batch id
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        search = self.search or ""
        if not isinstance(search, str):
            raise _invalid("search", "The search text must be text.")
        limit = get_settings().log_search_max_chars
        if len(search) > limit:
            raise _invalid("search", f"The search text is {len(search)} characters long; the limit is {limit}.")
        if "\x00" in search:
            raise _invalid("search", "The search text contains a NUL character, which cannot be searched for.")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "search", search)
        set_(self, "types", _names(self.types, "type", ERROR_TYPE_NAMES))
        set_(self, "severities", _names(self.severities, "severity", SEVERITY_ORDER))
        set_(self, "codes", _names(self.codes, "code", None))
        set_(self, "components", _names(self.components, "component", None))
        since, until = _as_utc(self.since, "since"), _as_utc(self.until, "until")
        if since is not None and until is not None and since > until:
            raise _invalid("until", "The end of the time range is before its start.")
        set_(self, "since", since)
        set_(self, "until", until)
        if self.resolved not in (None, True, False):
            raise _invalid("resolved", "resolved must be true, false or empty.")
        for name in ("request_id", "operation_id", "fingerprint"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > 128):
                raise _invalid(name, f"{name} must be text of at most 128 characters.")
            set_(self, name, value or None)


@contextmanager
def bind_connection(bind: Bind) -> Iterator[Connection]:
    """`bind` itself when it is a Connection (the caller owns it), else a new connection."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def filter_conditions(
    bind: Bind, flt: ErrorFilter | None, *, use_text_index: bool = True, many_matches: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE conditions for `flt` (shared by search, groups and the CSV export).

    `many_matches`: the text search is known to match many rows (a planner hint, same result).
    """
    if flt is None:
        return []
    c = error_logs.c
    conds: list[ColumnElement[bool]] = []
    if flt.search:
        conds.append(contains_text(bind, c.message, flt.search, fts_table=FTS_TABLE if use_text_index else None,
                                   probe=many_matches))
    for column, values in ((c.error_type, flt.types), (c.severity, flt.severities),
                           (c.error_code, flt.codes), (c.component, flt.components)):
        if len(values) == 1:
            conds.append(column == values[0])
        elif values:
            conds.append(column.in_(values))
    if flt.since is not None:
        conds.append(c.created_at >= flt.since)
    if flt.until is not None:
        conds.append(c.created_at < flt.until)
    if flt.resolved is not None:
        conds.append(c.resolved.is_(flt.resolved))
    if flt.request_id:
        conds.append(c.request_id == flt.request_id)
    if flt.operation_id:
        conds.append(c.operation_id == flt.operation_id)
    if flt.fingerprint:
        conds.append(c.fingerprint == flt.fingerprint)
    return conds


def ordering(order: str) -> list[Any]:
    """ORDER BY for the list and the export: newest (default) or oldest first, ties by id."""
    if order not in ORDERS:
        raise _invalid("order", f"order must be one of {', '.join(ORDERS)}.")
    c = error_logs.c
    return [c.created_at.desc(), c.id.desc()] if order == "newest" else [c.created_at.asc(), c.id.asc()]


def _count_by_rollup(conn: Connection, flt: ErrorFilter | None) -> int | None:
    """The number of rows matching `flt` from the hourly rollup, or None if it cannot answer.

    It can when `flt` only narrows by type, severity, code, resolved and time: whole hours
    are summed from error_log_rollup, the part hours at either end counted from the rows.
    """
    flt = flt or ErrorFilter()
    if flt.search or flt.components or flt.request_id or flt.operation_id or flt.fingerprint:
        return None
    r = error_log_rollup.c
    conds: list[ColumnElement[bool]] = []
    for column, values in ((r.error_type, flt.types), (r.severity, flt.severities), (r.error_code, flt.codes)):
        if values:
            conds.append(column.in_(values))
    if flt.resolved is not None:
        conds.append(r.resolved.is_(flt.resolved))
    edges: list[tuple[datetime | None, datetime | None]] = []
    if flt.since is not None:
        start = flt.since.replace(minute=0, second=0, microsecond=0)
        if start < flt.since:
            start += timedelta(hours=1)
        conds.append(r.bucket >= _hour_text(start))
        edges.append((flt.since, start))
    if flt.until is not None:
        end = flt.until.replace(minute=0, second=0, microsecond=0)
        conds.append(r.bucket < _hour_text(end))
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


def search_errors(
    bind: Bind, flt: ErrorFilter | None = None, *, page: int = 1, page_size: int = 50, order: str = "newest"
) -> Page:
    """One page of rows matching `flt` (newest first by default) and the total count."""
    max_size = get_settings().log_page_size_max
    if not isinstance(page, int) or page < 1:
        raise _invalid("page", "page must be a whole number from 1.")
    if not isinstance(page_size, int) or not 1 <= page_size <= max_size:
        raise _invalid("page_size", f"page_size must be a whole number from 1 to {max_size}.")
    with bind_connection(bind) as conn:
        counter = None
        if flt is not None and flt.search and flt == ErrorFilter(search=flt.search):
            counter = count_text_matches(conn, flt.search, fts_table=FTS_TABLE)  # the index alone, if it can
        total = _count_by_rollup(conn, flt) if counter is None else None
        if total is None:
            if counter is None:
                counter = select(func.count()).select_from(error_logs).where(*filter_conditions(conn, flt))
            total = conn.execute(counter).scalar_one()
        conds = filter_conditions(conn, flt, many_matches=total >= FTS_PROBE_MIN_MATCHES)
        stmt = (select(*LIST_COLUMNS).where(*conds).order_by(*ordering(order))
                .limit(page_size).offset((page - 1) * page_size))
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    return Page(rows=rows, total=int(total), page=page, page_size=page_size)


def get_error(bind: Bind, error_id: str) -> dict[str, Any] | None:
    """The whole row for `error_id` (the id shown to users), or None."""
    with bind_connection(bind) as conn:
        row = conn.execute(select(error_logs).where(error_logs.c.error_id == error_id)).first()
    return dict(row._mapping) if row is not None else None


def _bucket_key(value: Any, unit: str) -> datetime:
    """Normalise a bucket value from either engine to an aware UTC datetime."""
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(hour=0) if unit == "day" else value
    text = str(value)  # 'YYYY-MM-DD HH' (an hour) or 'YYYY-MM-DD' (a day)
    if unit == "day":
        return datetime.fromisoformat(text[:10] + " 00:00:00").replace(tzinfo=UTC)
    return datetime.fromisoformat(text + ":00:00").replace(tzinfo=UTC)


def _bucket_starts(since: datetime, until: datetime, unit: str) -> list[datetime]:
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    out = []
    while start < until:
        out.append(start)
        start += step
    return out


def _hour_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H")


def _stats_rows(conn: Connection, since: datetime, until: datetime) -> tuple[list[Any], list[Any]]:
    """Counts for ``since <= created_at < until``: (per hour, per code).

    Per-hour rows are (bucket, error_type, severity, n, recoverable, recovered, unresolved);
    per-code rows (error_code, n). Whole UTC hours come from error_log_rollup (kept by
    triggers, migration 0003), the part hours at either end from error_logs. The per-hour
    statement follows the rollup's key order, so it groups without a sort, and carries the
    flag sums, so a month at a million errors (~35,000 rollup rows) is read twice, not three
    times (SQLite, 1M rows: 44 -> 30 ms a call).
    """
    full_start = since.replace(minute=0, second=0, microsecond=0)
    if full_start < since:
        full_start += timedelta(hours=1)
    full_end = max(until.replace(minute=0, second=0, microsecond=0), full_start)
    raw_windows = [(since, until)] if full_start >= full_end else [(since, full_start), (full_end, until)]
    per_hour: list[Any] = []
    per_code: list[Any] = []

    def collect(bucket_col: Any, t: Any, where: Any, n: Any) -> None:
        keys = (bucket_col.label("bucket"), t.error_type, t.severity)
        per_hour.extend(conn.execute(select(
            *keys,
            func.sum(n).label("n"),
            func.sum(case((t.is_recoverable.is_(True), n), else_=0)).label("recoverable"),
            func.sum(case((t.recovered.is_(True), n), else_=0)).label("recovered"),
            func.sum(case((t.resolved.is_(False), n), else_=0)).label("unresolved"),
        ).where(where).group_by(*keys)).all())
        per_code.extend(conn.execute(
            select(t.error_code, func.sum(n).label("n")).where(where).group_by(t.error_code)).all())

    if full_start < full_end:
        r = error_log_rollup.c
        collect(r.bucket, r, and_(r.bucket >= _hour_text(full_start), r.bucket < _hour_text(full_end)), r.n)
    c = error_logs.c
    for start, end in raw_windows:
        if start < end:
            collect(time_bucket(conn, c.created_at, "hour"), c, and_(c.created_at >= start, c.created_at < end),
                    literal(1))
    return per_hour, per_code


def error_stats(
    bind: Bind, *, since: datetime, until: datetime | None = None, bucket: str = "hour"
) -> dict[str, Any]:
    """Counts over ``since <= created_at < until`` for the stats cards and the charts.

    Returns totals, counts by severity and by type, the top codes, the recoverable and the
    automatically recovered shares, the unresolved count, and per-bucket series (one list of
    counts per type and per severity, aligned with ``buckets``; empty buckets are zeros).
    """
    if bucket not in ("hour", "day"):
        raise _invalid("bucket", "bucket must be hour or day.")
    since_utc = _as_utc(since, "since")
    if since_utc is None:
        raise _invalid("since", "since is required.")
    until_utc = _as_utc(until, "until") or datetime.now(UTC)
    if since_utc > until_utc:
        raise _invalid("until", "The end of the time range is before its start.")
    with bind_connection(bind) as conn:
        per_hour, per_code = _stats_rows(conn, since_utc, until_utc)
    total = recoverable = recovered = unresolved = 0
    by_severity = dict.fromkeys(SEVERITY_ORDER, 0)
    by_type: dict[str, int] = dict.fromkeys(ERROR_TYPE_NAMES, 0)
    by_code: dict[str, int] = {}
    starts = _bucket_starts(since_utc, until_utc, bucket)
    index = {s: i for i, s in enumerate(starts)}
    series_type = {t: [0] * len(starts) for t in by_type}
    series_severity = {s: [0] * len(starts) for s in by_severity}
    for code, raw_n in per_code:
        if raw_n:  # zero: a rollup row whose errors were all removed
            by_code[code] = by_code.get(code, 0) + int(raw_n)
    positions: dict[Any, int | None] = {}  # many rows share an hour; place each hour once
    # plain tuples: a month of hours is ~6,500 rows, and Row attribute access dominated the loop.
    # Postgres sums are numeric, hence int().
    for row_bucket, error_type, severity, raw_n, raw_recoverable, raw_recovered, raw_open in per_hour:
        n = int(raw_n)
        if not n:
            continue
        total += n
        recoverable += int(raw_recoverable)
        recovered += int(raw_recovered)
        unresolved += int(raw_open)
        by_severity[severity] = by_severity.get(severity, 0) + n
        by_type[error_type] = by_type.get(error_type, 0) + n
        i = positions.get(row_bucket, -1)
        if i == -1:
            i = positions[row_bucket] = index.get(_bucket_key(row_bucket, bucket))
        if i is None:  # cannot happen for rows inside the window
            continue
        series = series_type.get(error_type)
        if series is None:
            series = series_type[error_type] = [0] * len(starts)
        series[i] += n
        series = series_severity.get(severity)
        if series is None:
            series = series_severity[severity] = [0] * len(starts)
        series[i] += n
    top = sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CODES]
    return {
        "since": since_utc.isoformat(),
        "until": until_utc.isoformat(),
        "bucket": bucket,
        "total": total,
        "by_severity": by_severity,
        "by_type": by_type,
        "top_codes": [{"code": k, "count": v} for k, v in top],
        "recoverable": recoverable,
        "recoverable_share": recoverable / total if total else 0.0,
        "recovered": recovered,
        "recovered_share": recovered / total if total else 0.0,
        "unresolved": unresolved,
        "buckets": [s.isoformat() for s in starts],
        "series_by_type": series_type,
        "series_by_severity": series_severity,
    }


def _severity_rank(column: Any) -> ColumnElement[int]:
    return case({name: i for i, name in enumerate(SEVERITY_ORDER)}, value=column, else_=-1)


def error_groups(bind: Bind, flt: ErrorFilter | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
    """Rows matching `flt` grouped by fingerprint, most recently seen first.

    Each group: fingerprint, count, first_seen, last_seen, severity (the highest seen),
    batches (distinct batch ids), unresolved, and from its latest row: message,
    error_type, error_code, component, error_id.
    """
    if not isinstance(limit, int) or not 1 <= limit <= get_settings().log_page_size_max:
        raise _invalid("limit", f"limit must be a whole number from 1 to {get_settings().log_page_size_max}.")
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
                "count": int(g.count),
                "first_seen": _as_utc(g.first_seen, "first_seen"),
                "last_seen": _as_utc(g.last_seen, "last_seen"),
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
        raise _invalid("error_ids", "Give either error ids or a fingerprint to resolve.")
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


@dataclass(frozen=True)
class _Retention:
    now: datetime
    error_cutoff: datetime
    other_cutoff: datetime
    conditions: dict[str, ColumnElement[bool]] = field(default_factory=dict)


_LONG_KEPT = (Severity.ERROR.value, Severity.CRITICAL.value)


def _retention(now: datetime | None) -> _Retention:
    s = get_settings()
    now_utc = _as_utc(now, "now") or datetime.now(UTC)
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
        counts = {k: int(conn.execute(select(func.count()).select_from(error_logs).where(cond)).scalar_one())
                  for k, cond in r.conditions.items()}
    return _retention_report(r, counts)


def apply_retention(bind: Engine, now: datetime | None = None) -> dict[str, Any]:
    """Remove rows past retention (settings.retention_days_error / _other), in chunks that resume.

    Each chunk of settings.checkpoint_chunk_rows rows is one transaction that also advances
    the operation's checkpoint (core.store.resumable), so the write lock is held briefly
    however many rows go. Interrupted, the next call resumes with the first call's cut-offs
    (its `now`, not this one's). Returns the same report as `retention_preview`, with the
    numbers removed over every run.
    """
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
