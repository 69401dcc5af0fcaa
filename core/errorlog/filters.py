"""What the error log is narrowed to: the validated filter, its WHERE conditions and the list order.

Shared by the search, the stats, the groups and the CSV export, so all four count and list the
same rows. Time ranges are half-open: ``since <= created_at < until``. The conditions always
include whom the rows are shown to (core.auth.permissions: an analyst or a reviewer sees their
own rows and the system's, an admin every row); the hourly rollup counts every person's rows
together, so it answers only for an actor who sees them all (`rollup_serves`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, or_, select, table
from sqlalchemy import column as table_column
from sqlalchemy.sql.visitors import replacement_traverse

from core.auth.actor import Actor, current_actor, system_actor
from core.auth.claims import AS_ACTOR, AS_LOGIN_ROLE, role_of
from core.auth.permissions import Action, Kind, Scope, scope, where
from core.config import get_settings
from core.errors import ERROR_TYPES, EVENT_CODES, AppError, Severity, ValidationError
from core.store.dialect import contains_text, is_sqlite
from core.store.schema import error_log_rollup, error_logs
from core.store.tx import read_conn

__all__ = [
    "ERROR_TYPE_NAMES",
    "KINDS",
    "SEVERITY_ORDER",
    "Bind",
    "SORTS",
    "ErrorFilter",
    "bind_connection",
    "filter_conditions",
    "ordering",
    "recent_components",
    "rollup_conditions",
    "rollup_serves",
    "searched",
    "severity_rank",
    "viewer",
    "visible",
]

# lowest to highest; the groups view reports the highest severity seen in a group
SEVERITY_ORDER: tuple[str, ...] = tuple(s.value for s in Severity)
# AppError itself carries error_type "internal"
ERROR_TYPE_NAMES: tuple[str, ...] = (*ERROR_TYPES, AppError.error_type)
FTS_TABLE = "error_logs_fts"  # SQLite FTS5 trigram index over error_logs.message (migration 0001)
ORDERS = ("newest", "oldest")
# what a row is: an error, or an event (a breaker's state change, see core.errors.EVENT_CODES)
KINDS = ("error", "event")
_EVENT_CODES = sorted(str(code) for code in EVENT_CODES)
# what the list can be sorted by, over the whole filtered set (ties: newest first)
SORTS = ("time", "severity", "type", "code", "component")
# the search matches codes and components among the newest rows' ones (a primary-key range)
RECENT_COMPONENT_ROWS = 20_000
# how long the search reuses the names of codes and components it matches (reading them costs
# ~20 ms at 100,000 rows, paid three times a search otherwise). The names are read as the system
# and shared by everyone: they are the code's own labels, not a person's data, and they only
# widen what the search matches; which rows it returns is still the actor's (`visible`).
LABEL_NAMES_TTL_S = 30.0
_LABEL_NAMES: weakref.WeakKeyDictionary[Engine, tuple[float, list[str], list[str]]] = weakref.WeakKeyDictionary()
# Postgres: error_logs as a person may read it, for the text search (migration 0013: the policy's
# condition in a view of service_role's, so the trigram index can serve the ILIKE)
SEARCH_VIEW = table("error_log_search", *(table_column(c.name, c.type) for c in error_logs.c), schema="studio_private")

Bind = Engine | Connection


def invalid(field_name: str, message: str) -> ValidationError:
    """The refusal of a bad query argument, naming it; its message is fit to show."""
    return ValidationError(message, field=field_name, user_message=message)


def as_utc(value: datetime | None, field_name: str) -> datetime | None:
    """`value` as an aware UTC datetime (naive ones are taken as UTC); None stays None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise invalid(field_name, f"{field_name} must be a date and time, not {value!r}.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rollup_hour(t: datetime) -> str:
    """The key of the error_log_rollup bucket (one UTC hour) that `t` falls in."""
    return t.strftime("%Y-%m-%d %H")


def _names(values: Iterable[str] | str | None, field_name: str, allowed: Sequence[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    items = (values,) if isinstance(values, str) else tuple(values)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise invalid(field_name, f"{field_name} must be a list of non-empty names.")
        name = item.strip()
        if allowed is not None and name not in allowed:
            raise invalid(field_name, f"Unknown {field_name} {name!r}: use one of {', '.join(allowed)}.")
        if len(name) > 128:
            raise invalid(field_name, f"{field_name} {name[:20]!r}... is longer than 128 characters.")
        if name not in out:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class ErrorFilter:
    """What the error log is narrowed to. Validated (and normalised) on construction.

    Empty fields do not filter. `search` is matched literally and case-insensitively
    against the message, the code and the component; list fields match any of their values;
    `resolved` None means both. `kind` is "error" by default, so events (a breaker's state
    changes) are not counted as errors; "event" selects only them, None both.
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
    kind: str | None = "error"

    def __post_init__(self) -> None:
        search = self.search or ""
        if not isinstance(search, str):
            raise invalid("search", "The search text must be text.")
        limit = get_settings().log_search_max_chars
        if len(search) > limit:
            raise invalid("search", f"The search text is {len(search)} characters long; the limit is {limit}.")
        if "\x00" in search:
            raise invalid("search", "The search text contains a NUL character, which cannot be searched for.")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "search", search)
        set_(self, "types", _names(self.types, "type", ERROR_TYPE_NAMES))
        set_(self, "severities", _names(self.severities, "severity", SEVERITY_ORDER))
        set_(self, "codes", _names(self.codes, "code", None))
        set_(self, "components", _names(self.components, "component", None))
        since, until = as_utc(self.since, "since"), as_utc(self.until, "until")
        if since is not None and until is not None and since > until:
            raise invalid("until", "The end of the time range is before its start.")
        set_(self, "since", since)
        set_(self, "until", until)
        if self.kind is not None and self.kind not in KINDS:
            raise invalid("kind", f"kind must be one of {', '.join(KINDS)}, or empty for both.")
        if self.resolved not in (None, True, False):
            raise invalid("resolved", "resolved must be true, false or empty.")
        for name in ("request_id", "operation_id", "fingerprint"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > 128):
                raise invalid(name, f"{name} must be text of at most 128 characters.")
            set_(self, name, value or None)

    @property
    def rollup_answers(self) -> bool:
        """Whether the hourly rollup keeps what these rows are narrowed by: type, severity, code and resolved.

        It also counts every person's rows together: see `rollup_serves` for whom it may answer.
        """
        return not (self.search or self.components or self.request_id or self.operation_id or self.fingerprint)


def viewer(bind: Bind) -> Actor:
    """Whom a query on `bind` runs for: the actor its connection was opened as, else the running code's."""
    actor = bind.get_execution_options().get(AS_ACTOR)
    return actor if isinstance(actor, Actor) else current_actor(bind.engine)


def visible(bind: Bind, action: Action = Action.VIEW) -> list[ColumnElement[bool]]:
    """The condition keeping the rows the actor of `bind` may `action` (none for one who may reach every row)."""
    actor = viewer(bind)
    if scope(actor, action, Kind.ERROR) is Scope.EVERY:
        return []  # nothing to add: the plan stays the one it was before there were users
    return [where(actor, action, Kind.ERROR, error_logs.c.user_id)]


def rollup_serves(bind: Bind, flt: ErrorFilter) -> bool:
    """Whether the hourly rollup may count `flt`'s rows for the actor of `bind`.

    The rollup has no user column: it counts everyone's rows, so it answers only for an actor who
    sees every row (an admin, the system). On Postgres it is readable by them alone (migration
    0011); an analyst's counts come from their own rows.
    """
    return flt.rollup_answers and scope(viewer(bind), Action.VIEW, Kind.ERROR) is Scope.EVERY


def searched(bind: Bind, flt: ErrorFilter | None, stmt: Any) -> Any:
    """`stmt` (built on error_logs) reading SEARCH_VIEW instead, when `flt` searches text as a person on Postgres.

    Under RLS, Postgres applies error_logs' policy before the ILIKE (which is not LEAKPROOF),
    so the trigram index cannot serve it; the view applies the same condition as the policy
    without that order. The same rows either way: the statement's own conditions, the actor's
    permission among them, are unchanged. Elsewhere (SQLite; service_role, which bypasses RLS;
    the login role) `stmt` as it is.
    """
    if (flt is None or not flt.search or is_sqlite(bind) or bind.get_execution_options().get(AS_LOGIN_ROLE)
            or role_of(viewer(bind)) != "authenticated"):
        return stmt

    def to_view(element: Any, **_kw: Any) -> Any:
        if element is error_logs:
            return SEARCH_VIEW
        if getattr(element, "table", None) is error_logs:
            return SEARCH_VIEW.c[element.name]
        return None

    return replacement_traverse(stmt, {}, to_view)


@contextmanager
def bind_connection(bind: Bind) -> Iterator[Connection]:
    """`bind` itself when it is a Connection (the caller owns it), else a new connection."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def filter_conditions(
    bind: Bind, flt: ErrorFilter | None, *, use_text_index: bool = True, many_matches: bool = False,
    action: Action = Action.VIEW,
) -> list[ColumnElement[bool]]:
    """The WHERE conditions for `flt` (shared by search, stats, groups and the CSV export).

    The first keeps the rows the actor of `bind` may `action` (see `visible`), so no filter
    reaches another person's rows. `many_matches`: the text search is known to match many rows
    (a planner hint, same result).
    """
    conds = visible(bind, action)
    if flt is None:
        return conds
    c = error_logs.c
    if flt.search:
        in_message = contains_text(bind, c.message, flt.search, fts_table=FTS_TABLE if use_text_index else None,
                                   probe=many_matches)
        codes, components = label_matches(bind, flt.search)
        in_labels = ([c.error_code.in_(codes)] if codes else []) + ([c.component.in_(components)] if components else [])
        conds.append(or_(in_message, *in_labels) if in_labels else in_message)
    for column, values in ((c.error_type, flt.types), (c.severity, flt.severities),
                           (c.error_code, flt.codes), (c.component, flt.components)):
        if len(values) == 1:
            conds.append(column == values[0])
        elif values:
            conds.append(column.in_(values))
    conds.extend(_kind_conditions(c.error_code, flt.kind))
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


def rollup_conditions(flt: ErrorFilter) -> list[ColumnElement[bool]]:
    """`flt`'s conditions on error_log_rollup (its time range aside); only when `flt.rollup_answers`."""
    r = error_log_rollup.c
    conds: list[ColumnElement[bool]] = [column.in_(values) for column, values in (
        (r.error_type, flt.types), (r.severity, flt.severities), (r.error_code, flt.codes)) if values]
    conds.extend(_kind_conditions(r.error_code, flt.kind))
    if flt.resolved is not None:
        conds.append(r.resolved.is_(flt.resolved))
    return conds


def _kind_conditions(code: Any, kind: str | None) -> list[ColumnElement[bool]]:
    """Errors or events alone, told apart by their code (which the rollup keeps too)."""
    if kind == "error":
        return [code.not_in(_EVENT_CODES)]
    if kind == "event":
        return [code.in_(_EVENT_CODES)]
    return []


def label_matches(bind: Bind, needle: str) -> tuple[list[str], list[str]]:
    """The codes and the components that contain `needle` (case-insensitively), for the search.

    Both are a handful of names, so the search asks for them by value (an index lookup for
    codes) instead of scanning every row's text. The names are read at most every
    LABEL_NAMES_TTL_S per engine: codes from the hourly rollup, which holds every code present;
    components from the newest rows (see `recent_components`). A name first seen since
    then is found by its message only, until the next read.
    """
    codes, components = _label_names(bind)
    lowered = needle.lower()
    return ([code for code in codes if lowered in code.lower()],
            [name for name in components if lowered in name.lower()])


def _label_names(bind: Bind) -> tuple[list[str], list[str]]:
    engine = bind.engine
    now = time.monotonic()
    cached = _LABEL_NAMES.get(engine)
    if cached is not None and now - cached[0] < LABEL_NAMES_TTL_S:
        return cached[1], cached[2]
    # as the system, whoever asks first: on Postgres an analyst cannot read the rollup, and the
    # names they would find (none) must not become everyone's for the next LABEL_NAMES_TTL_S
    with read_conn(engine, actor=system_actor()) as conn:
        codes = list(conn.execute(select(error_log_rollup.c.error_code).distinct()).scalars().all())
    components = recent_components(engine)
    _LABEL_NAMES[engine] = (now, codes, components)
    return codes, components


def recent_components(bind: Bind) -> list[str]:
    """The components of the newest rows of anyone, sorted: a primary-key range, cheap at any table size.

    Read as the system: component names are the code's own labels (``ui.generate.form``,
    ``batch_worker``), the same list for everyone on both engines, for the filter's choices.
    """
    recent = select(error_logs.c.component).order_by(error_logs.c.id.desc()).limit(RECENT_COMPONENT_ROWS).subquery()
    with read_conn(bind.engine, actor=system_actor()) as conn:
        values = conn.execute(select(recent.c.component).group_by(recent.c.component)).scalars().all()
    return sorted(v for v in values if v)


def severity_rank(column: Any) -> ColumnElement[int]:
    """A severity as its rank in SEVERITY_ORDER (debug 0 ... critical 4), so it sorts by weight."""
    return case({name: i for i, name in enumerate(SEVERITY_ORDER)}, value=column, else_=-1)


def ordering(order: str = "newest", sort: str = "time") -> list[Any]:
    """ORDER BY for the list and the export: by `sort`, descending for newest (default), ties by time and id.

    Severity sorts by weight (critical above error), not alphabetically.
    """
    if order not in ORDERS:
        raise invalid("order", f"order must be one of {', '.join(ORDERS)}.")
    if sort not in SORTS:
        raise invalid("sort", f"sort must be one of {', '.join(SORTS)}.")
    c = error_logs.c
    key = {"time": None, "severity": severity_rank(c.severity), "type": c.error_type, "code": c.error_code,
           "component": c.component}[sort]
    keys = [c.created_at, c.id] if key is None else [key, c.created_at, c.id]
    return [k.desc() for k in keys] if order == "newest" else [k.asc() for k in keys]
