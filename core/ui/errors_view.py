"""The Errors page's pieces: filters, stats cards, charts, groups, the paged table, detail, export."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core.auth import Actor, acting_as, in_current_context
from core.auth.users import names_of
from core.config import get_settings
from core.errorlog import (
    ERROR_TYPE_NAMES,
    SEVERITY_ORDER,
    ErrorFilter,
    error_groups_page,
    error_stats,
    export,
    get_error,
    recorder_stats,
    search_errors,
    set_resolved,
)
from core.errorlog.filters import KINDS, SORTS, recent_components
from core.errorlog.groups import GROUP_SORTS
from core.errorlog.stats import BUCKET_STEPS
from core.errors import ValidationError
from core.redact import redact
from core.resilience import all_breakers
from core.store import get_engine
from core.ui import error_charts
from core.ui.boundaries import dialog, section_key
from core.ui.downloads import capped, limit_note
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.toasts import success
from core.ui.user import current_person
from core.ui.widgets import ago, metric_cards, severity_badge
from core.wording import counted

__all__ = ["RANGES", "FilterForm", "charts", "detail_dialog", "export_button", "filters", "groups",
           "stats_cards", "table"]

RANGES: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1), "Last 24 hours": timedelta(days=1), "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30), "All time": None, "Custom": None,
}
_K = "errors"  # session-state prefix shared by the page's sections
_TABS_KEY, _ROWS_TAB = "errors.tabs", "Rows"  # the page's tabs (app_pages/errors.py), so a group opens on Rows
# the filter bar's widgets and what each is reset to by "Clear filters"
_FILTER_DEFAULTS: dict[str, Any] = {"search": "", "range": "Last 7 days", "resolved": "All", "types": [],
                                    "severities": [], "codes": [], "components": [], "batch": "", "request": "",
                                    "kind": "error"}
# filters set by a click rather than a widget (a group's rows, a chart's bar); "Clear filters" drops them too
_CLICK_FILTERS = ("fingerprint", "window")
_KIND_LABELS = {"error": "Errors", "event": "Breaker events", "all": "Errors and events"}
_GROUP_SORT_LABELS = {"last_seen": "Last seen", "count": "Count", "first_seen": "First seen", "severity": "Severity"}
PAGE_SIZES = (25, 50, 100, 200)


def _key(name: str) -> str:
    return section_key(_K, name)


@dataclass
class FilterForm:
    flt: ErrorFilter | None  # None: the form has an invalid field (its message is shown beside it)
    since: datetime | None
    until: datetime | None


def _time_range(label: str, custom: tuple[Any, ...] | None) -> tuple[datetime | None, datetime | None]:
    # whole minutes, so the stats cards (cached per minute) and the table count the same rows
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if label == "Custom" and custom and len(custom) == 2:
        start = datetime.combine(custom[0], time.min, UTC)
        return start, datetime.combine(custom[1], time.min, UTC) + timedelta(days=1)
    span = RANGES.get(label)
    return (now - span if span else None), None


def filters(code_options: list[str], component_options: list[str]) -> FilterForm:
    """The filter bar; a bad field gets its message right beside it and the filter is not applied."""
    params = st.query_params
    for name in ("batch", "request"):  # a link's ?batch= / ?request= fills its field once
        if name in params and _key(name) not in st.session_state:
            st.session_state[_key(name)] = params.get(name, "")
    if params.get("kind") in (*KINDS, "all") and _key("kind") not in st.session_state:  # Home's breaker history
        st.session_state[_key("kind")] = params.get("kind")
    c1, c2, c3 = st.columns([3, 2, 2])
    search = c1.text_input("Search", key=_key("search"), placeholder="words from the message, a code or a component",
                           help="Finds the text in the message, the code (\"timeout\" finds request_timeout) "
                                "and the component, whatever the case.")
    hints = {"search": c1.empty()}
    range_label = c2.selectbox("Time range", list(RANGES), index=list(RANGES).index(_FILTER_DEFAULTS["range"]),
                               key=_key("range"))
    custom = None
    if range_label == "Custom":
        today = datetime.now(UTC).date()
        custom = c2.date_input("From – to", value=(today - timedelta(days=7), today), key=_key("custom"))
    hints["since"] = hints["until"] = c2.empty()
    resolved_label = c3.selectbox("Status", ["All", "Open", "Resolved"], key=_key("resolved"))
    c4, c5, c6, c7 = st.columns(4)
    types = c4.multiselect("Type", ERROR_TYPE_NAMES, key=_key("types"))
    severities = c5.multiselect("Severity", SEVERITY_ORDER, key=_key("severities"))
    codes = c6.multiselect("Code", code_options, key=_key("codes"), accept_new_options=True)
    components = c7.multiselect("Component", component_options, key=_key("components"), accept_new_options=True)
    hints.update(type=c4.empty(), severity=c5.empty(), code=c6.empty(), component=c7.empty())
    c8, c9, c10, c11 = st.columns([3, 3, 2, 1.6], vertical_alignment="bottom")
    batch = c8.text_input("Batch id", key=_key("batch"))
    hints["operation_id"] = c8.empty()
    request = c9.text_input("Request id", key=_key("request"))
    hints["request_id"] = c9.empty()
    kind = c10.selectbox("Show", [*KINDS, "all"], format_func=_KIND_LABELS.__getitem__, key=_key("kind"),
                         help="A circuit breaker's state changes (opened, half-open, closed) are events, "
                              "not errors: they are left out of the counts unless shown here")
    c11.button("Clear filters", key=_key("clear"), icon=":material/filter_alt_off:", on_click=clear_filters)
    since, until = _time_range(range_label, custom)
    fingerprint, window = _click_filters()
    if window is not None:
        since, until = window
    try:
        flt = ErrorFilter(
            search=search.strip(), types=tuple(types), severities=tuple(severities), codes=tuple(codes),
            components=tuple(components), since=since, until=until,
            resolved={"All": None, "Open": False, "Resolved": True}[resolved_label],
            request_id=request.strip() or None, operation_id=batch.strip() or None, fingerprint=fingerprint,
            kind=None if kind == "all" else kind,
        )
    except ValidationError as exc:
        hints.get(exc.field or "search", hints["search"]).error(literal(exc.user_message), icon=":material/error:")
        flt = None
    return FilterForm(flt=flt, since=since, until=until)


def _click_filters() -> tuple[str | None, tuple[datetime, datetime] | None]:
    """The group and the chart bar the table was narrowed to by a click, each shown with a way back."""
    fingerprint = st.session_state.get(_key("fingerprint"))
    window = st.session_state.get(_key("window"))
    if fingerprint:
        c1, c2 = st.columns([6, 1], vertical_alignment="center")
        c1.info(f"Showing one group's rows: {literal(st.session_state.get(_key('fingerprint_label'), ''))}",
                icon=":material/filter_alt:")
        c2.button("All rows", key=_key("drop_fingerprint"), icon=":material/close:",
                  on_click=_drop, args=("fingerprint",))
    if window:
        c1, c2 = st.columns([6, 1], vertical_alignment="center")
        c1.info(f"Showing {window[0]:%Y-%m-%d %H:%M} – {window[1]:%H:%M} UTC, the bar clicked in the chart",
                icon=":material/filter_alt:")
        c2.button("Whole range", key=_key("drop_window"), icon=":material/close:", on_click=_drop, args=("window",))
    return fingerprint or None, window or None


def _drop(name: str) -> None:
    st.session_state.pop(_key(name), None)


def clear_filters() -> None:
    """Every filter back to its default, the ?batch= / ?request= of a link dropped too."""
    for name, value in _FILTER_DEFAULTS.items():
        st.session_state[_key(name)] = value
    for name in _CLICK_FILTERS:
        _drop(name)
    for name in ("batch", "request", "kind"):
        st.query_params.pop(name, None)


@st.cache_data(ttl=5, show_spinner=False)
def _stats(url: str, viewer: Actor, flt: ErrorFilter, bucket: str) -> dict[str, Any]:
    with acting_as(viewer):  # the rows counted are the ones `viewer` may see: they are part of the key
        return error_stats(get_engine(url), flt, bucket=bucket)


# the widest range each bar width is used for: minutes for the last hour (or a clicked hour), hours up to 3 days
_BUCKET_SPANS = (("minute", timedelta(hours=2)), ("hour", timedelta(days=3)))


def _bucket(since: datetime | None, until: datetime | None) -> str:
    """The bar width that fits the range: a live incident spreads over many bars, not one."""
    if since is None:
        return "day"
    span = (until or datetime.now(UTC)) - since
    return next((unit for unit, widest in _BUCKET_SPANS if span <= widest), "day")


def load_stats(form: FilterForm) -> dict[str, Any]:
    """The cards' and charts' counts of exactly the rows the filters select (the table's rows)."""
    # the form's times are whole minutes, so the 5 s cache is shared between reruns
    flt = form.flt if form.flt is not None else ErrorFilter(since=form.since, until=form.until)
    return _stats(get_settings().effective_database_url, current_person(), flt, _bucket(flt.since, flt.until))


def stats_cards(stats: dict[str, Any], kind: str | None = "error") -> None:
    """The cards; the first counts errors (events only when the filter shows them), like the table."""
    open_breakers = sum(1 for b in all_breakers() if b.get("state") != "closed")
    lost = recorder_stats()["lost"]
    first = {"error": "Errors", "event": "Events"}.get(kind or "", "Errors and events")
    metric_cards([
        (first, f"{stats['total']:,}", "Rows matching the filters (the table's count)"),
        ("Critical", f"{stats['by_severity'].get('critical', 0):,}", "Severity critical"),
        ("Recoverable", f"{stats['recoverable_share']:.0%}", "Share that a retry can fix"),
        ("Recovered automatically", f"{stats['recovered_share']:.0%}", "Share that a retry did fix"),
        ("Open breakers", f"{open_breakers}", "Circuit breakers not closed right now"),
        ("Rows lost", f"{lost:,}", "Errors this app process could neither write to the database nor keep in "
                                   "its spool file since it started (the database was down and the disk "
                                   "not writable)"),
    ])


def charts(stats: dict[str, Any]) -> None:
    """Errors over time, by severity and by code; clicking a bar narrows the table to it."""
    if not stats["total"]:
        st.info("No errors match these filters.", icon=":material/check_circle:")
        return
    st.session_state[_key("chart_bucket")] = stats["bucket"]  # the width of a clicked bar, read by the handler
    # a handled click gives each chart a new key, so the same bar can be clicked again after "Clear filters"
    generation = st.session_state.get(_key("chart_clicks"), 0)
    specs = {"time": error_charts.time_spec(stats), "severity": error_charts.severity_spec(stats),
             "codes": error_charts.codes_spec(stats)}
    for col, name in zip(st.columns([2, 1, 1]), specs, strict=True):
        key = _key(f"chart_{name}_{generation}")
        col.vega_lite_chart(specs[name], key=key, on_select=functools.partial(_chart_clicked, name, key),
                            selection_mode=error_charts.SELECTION, width="stretch")
    st.caption("Click a bar to show only its rows in the table.")
    if st.session_state.pop(_key("chart_refilter"), False):
        st.rerun()  # the charts refresh on their own (a fragment): the filters and the table want the whole page


def _clicked_time(value: Any) -> datetime | None:
    """A clicked bar's start: Vega hands back a time as milliseconds since the epoch (or as text)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and value:
        start = pd.Timestamp(value).to_pydatetime()
        return start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    return None


def _chart_clicked(name: str, key: str) -> None:
    """A bar was clicked: narrow the filters to it (its type and time, its severity or its code)."""
    event = st.session_state.get(key)
    selection = getattr(event, "selection", None) or (event or {}).get("selection", {})
    points = list(selection.get(error_charts.SELECTION) or [])
    if not points:
        return
    point = points[0]
    if name == "severity" and point.get("severity") in SEVERITY_ORDER:
        st.session_state[_key("severities")] = [point["severity"]]
    elif name == "codes" and point.get("code"):
        st.session_state[_key("codes")] = [str(point["code"])]
    elif name == "time" and point.get("type") in ERROR_TYPE_NAMES and (start := _clicked_time(point.get("start"))):
        bucket = st.session_state.get(_key("chart_bucket"), "day")
        st.session_state[_key("types")] = [point["type"]]
        st.session_state[_key("window")] = (start, start + BUCKET_STEPS[bucket])
    else:
        return
    st.session_state[_key("chart_clicks")] = st.session_state.get(_key("chart_clicks"), 0) + 1
    st.session_state[_key("chart_refilter")] = True


def groups(flt: ErrorFilter) -> None:
    """One line per fingerprint, a page at a time: open it to its rows, or resolve the whole group after saying
    how many rows. The group being resolved is the table state's selection: a filter or a page change drops it."""
    sort = st.selectbox("Sort groups by", GROUP_SORTS, format_func=_GROUP_SORT_LABELS.__getitem__,
                        key=_key("group_sort"), help="Largest or latest first, over every group the filters select")
    size = get_settings().ui_table_page_size
    state = TableState(_key("groups"), (_signature(flt), sort))
    page = state.load(lambda n: error_groups_page(get_engine(), flt, page=n, page_size=size, sort=sort))
    if not page.total:
        st.caption("No groups for these filters.")
        return
    asked = state.chosen([g["fingerprint"] for g in page.rows])
    for g in page.rows:
        fp = g["fingerprint"]
        c1, c2, c3, c4 = st.columns([5, 2, 1.5, 1.5])
        c1.markdown(f"{severity_badge(g['severity'])} **{literal(g['error_code'])}** · "
                    f"{literal(g['component'] or '—')}  \n{literal(g['message'] or '', max_chars=160)}")
        c2.caption(f"{g['count']:,} rows · {g['unresolved']:,} open  \nfirst {ago(g['first_seen'])} · "
                   f"last {ago(g['last_seen'])}",
                   help=f"First seen {g['first_seen']:%Y-%m-%d %H:%M:%S} UTC, last seen "
                        f"{g['last_seen']:%Y-%m-%d %H:%M:%S} UTC")
        c3.button("Show rows", key=_key(f"open_group_{fp}"), icon=":material/list:", on_click=open_group,
                  args=(fp, f"{g['error_code']} · {g['component'] or '—'}"))
        if g["unresolved"]:
            c4.button("Resolve all", key=_key(f"resolve_group_{fp}"), icon=":material/done_all:",
                      on_click=state.choose, args=(fp,))
        elif c4.button("Reopen", key=_key(f"reopen_group_{fp}"), icon=":material/undo:"):
            set_resolved(get_engine(), fingerprint=fp, resolved=False)
            st.rerun()
        if asked == fp:
            _confirm_resolve(g, state)
    state.footer(page, "group", prefix=_key("groups_"))


def open_group(fingerprint: str, label: str) -> None:
    """The table narrowed to one group's rows, on the Rows tab."""
    st.session_state[_key("fingerprint")] = fingerprint
    st.session_state[_key("fingerprint_label")] = label
    st.session_state[_TABS_KEY] = _ROWS_TAB


def _confirm_resolve(group: dict[str, Any], state: TableState) -> None:
    """The confirm step of "Resolve all": how many rows it changes, counted now, over every time."""
    fp = group["fingerprint"]
    # resolving a group resolves its open rows of every time, so count those, not the filtered ones
    n = search_errors(get_engine(), ErrorFilter(fingerprint=fp, resolved=False, kind=None), page_size=1).total
    outside = max(n - group["unresolved"], 0)
    note = f" ({outside:,} of them outside the filters)" if outside else ""
    with st.container(border=True, key=_key(f"confirm_{fp}")):
        st.warning(f"Resolve {counted(n, 'open row')} of {literal(group['error_code'])}{note}?", icon=":material/help:")
        c1, c2, _ = st.columns([2, 1, 4])
        if c1.button(f"Resolve {counted(n, 'row')}", key=_key(f"confirm_yes_{fp}"), type="primary"):
            done = set_resolved(get_engine(), fingerprint=fp, resolved=True)
            state.choose(None)
            success(f"Resolved {counted(done, 'row')} of {literal(group['error_code'])}.")
            st.rerun()
        c2.button("Cancel", key=_key(f"confirm_no_{fp}"), on_click=state.choose, args=(None,))


_TABLE_COLUMNS = ["created_at", "exact_time", "severity", "error_type", "error_code", "component", "message",
                  "operation_id", "request_id", "resolved", "error_id"]
_SHORT_ID = 8


def _short(value: str | None, tail: bool = False) -> str:
    """An id cut to a few characters ('' for none); error ids are UUIDv7, whose head is only the time."""
    if not value:
        return ""
    if len(value) <= _SHORT_ID + 1:
        return value
    return "…" + value[-_SHORT_ID:] if tail else value[:_SHORT_ID] + "…"


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The page's rows as shown: short ids, blanks instead of None, the exact time beside the relative one."""
    shown = [{**r, "exact_time": f"{r['created_at']:%Y-%m-%d %H:%M:%S}" if r.get("created_at") else "",
              "component": r.get("component") or "", "operation_id": _short(r.get("operation_id")),
              "request_id": _short(r.get("request_id")), "error_id": _short(r.get("error_id"), tail=True),
              "resolved": "resolved" if r.get("resolved") else "open"} for r in rows]
    return pd.DataFrame(shown, columns=_TABLE_COLUMNS)


_COLUMN_CONFIG = {
    "created_at": st.column_config.DatetimeColumn("When", format="distance", help="How long ago; the exact time "
                                                  "is in the next column and in the detail"),
    "exact_time": st.column_config.TextColumn("Time (UTC)"),
    "severity": st.column_config.TextColumn("Severity"),
    "error_type": st.column_config.TextColumn("Type"),
    "error_code": st.column_config.TextColumn("Code"),
    "component": st.column_config.TextColumn("Component"),
    "message": st.column_config.TextColumn("Message", width="large"),
    "operation_id": st.column_config.TextColumn("Batch", help="The batch's id, cut short; the detail has it whole"),
    "request_id": st.column_config.TextColumn("Request", help="The request's id, cut short; the detail has it whole"),
    "resolved": st.column_config.TextColumn("Status"),
    "error_id": st.column_config.TextColumn("Error id", help="The end of the error's id; open the row for the "
                                            "whole id with a copy button"),
}


def _paging_controls() -> tuple[str, str, int]:
    """Sort, direction and page size; any change of them is part of the table's signature."""
    c1, c2, c3 = st.columns([2, 2, 1])
    sort = c1.selectbox("Sort by", SORTS, format_func=str.capitalize, key=_key("sort"),
                        help="Sorted by the server over every matching row, not only this page")
    order = c2.segmented_control("Order", ["newest", "oldest"], key=_key("order"), default="newest",
                                 format_func={"newest": "Descending", "oldest": "Ascending"}.__getitem__,
                                 help="Descending: newest, most severe or Z first; ascending: oldest, mildest or A first") or "newest"
    default_size = get_settings().ui_errors_page_size
    sizes = sorted({*PAGE_SIZES, default_size})
    size = int(c3.selectbox("Rows per page", sizes, index=sizes.index(default_size), key=_key("page_size")))
    return sort, order, size


def _signature(flt: ErrorFilter) -> tuple[Any, ...]:
    """The filter as the person set it: a relative range by its name, so the clock's minute does not reset paging."""
    label = st.session_state.get(_key("range"), _FILTER_DEFAULTS["range"])
    if label == "Custom":
        return (flt, label)
    return (dataclasses.replace(flt, since=None, until=None), label)


def table(flt: ErrorFilter) -> None:
    """The server-sorted, server-paged table; clicking a row opens the detail of exactly that error."""
    sort, order, size = _paging_controls()
    state = TableState(_key("rows"), (_signature(flt), sort, order, size))
    page = state.load(lambda n: search_errors(get_engine(), flt, page=n, page_size=size, sort=sort, order=order))
    # the grid's own download holds only the page on screen; "Download CSV" above has every matching row
    st.html('<style>.st-key-errors_grid [data-testid="stElementToolbarButton"]:has('
            'button[aria-label="Download as CSV"]){display:none}</style>')
    with st.container(key="errors_grid"):
        picked = state.grid(_frame(page.rows), [r["error_id"] for r in page.rows], hide_index=True,
                            column_config=_COLUMN_CONFIG)
    state.pager(page, prefix=_key(""), caption=f"Page {page.page:,} of {page.pages:,} · {page.total:,} matching rows")
    st.text_input("Open an error by id", key=_key("open_id"), placeholder="error id from a message",
                  on_change=_ask_to_open)
    asked = st.session_state.pop(_key("open_asked"), None)
    if picked.clicked:
        detail_dialog(str(picked.id))
    elif asked:
        detail_dialog(asked)


def _ask_to_open() -> None:
    """An id typed (and entered) opens its detail once, not again on every later rerun."""
    typed = str(st.session_state.get(_key("open_id")) or "").strip()
    if typed:
        st.session_state[_key("open_asked")] = typed


@dialog("Error detail", width="large")
def detail_dialog(error_id: str) -> None:
    row = get_error(get_engine(), error_id)
    if row is None:
        st.warning(f"No error with id {literal(repr(error_id[:64]))}.")
        return
    st.markdown(f"{severity_badge(row['severity'])} **{literal(row['error_type'])} / {literal(row['error_code'])}** · "
                f"{row['created_at']:%Y-%m-%d %H:%M:%S} UTC ({ago(row['created_at'])})")
    st.caption("Error id (copy with the button on the right)")
    st.code(row["error_id"], language="text")
    st.markdown(literal(row.get("user_message") or ""))
    st.code(row["message"], language="text", wrap_lines=True)
    meta = {k: row.get(k) for k in ("error_id", "component", "request_id", "operation_id", "attempt", "user_id",
                                    "session_id", "environment", "is_recoverable", "recovery_action",
                                    "recovered", "resolved", "resolved_by", "fingerprint")}
    names = names_of(get_engine(), (row.get("user_id"), row.get("resolved_by")))
    for who in ("user_id", "resolved_by"):  # people by name, not by their uuid
        if meta[who]:
            meta[who] = names.get(str(meta[who]), meta[who])
    st.json(meta, expanded=False)
    st.caption("Context (secrets removed)")
    st.json(_redacted(row.get("context") or {}), expanded=True)
    if get_settings().is_development and row.get("stack_trace"):
        with st.expander("Stack trace (development only)"):
            st.code(row["stack_trace"], language="text")
    c1, c2, c3 = st.columns(3)
    if row.get("operation_id"):
        c1.page_link("app_pages/batches.py", label="Open the batch", icon=":material/stacks:",
                     query_params={"batch": row["operation_id"]})
    if row.get("request_id"):
        c2.page_link("app_pages/errors.py", label="All errors of this request", icon=":material/link:",
                     query_params={"request": row["request_id"]})
    label = "Reopen" if row["resolved"] else "Resolve"
    if c3.button(label, key=_key("detail_resolve"), type="primary"):
        set_resolved(get_engine(), error_ids=[error_id], resolved=not row["resolved"])
        st.rerun()


def _redacted(context: Any) -> Any:
    # rows are redacted when recorded; scrubbing again on display costs little and guards old rows
    return redact(context)


def export_button(flt: ErrorFilter) -> None:
    """Download CSV of the filtered rows, in the table's order, generated when clicked, up to the download limit."""
    sort = st.session_state.get(_key("sort"), "time")
    order = st.session_state.get(_key("order")) or "newest"
    # made when clicked, on a thread of Streamlit's: as the person who clicked (the rows and the audit are theirs)
    st.download_button("Download CSV",
                       data=in_current_context(
                           lambda: capped(export.iter_csv_chunks(get_engine(), flt, order=order, sort=sort))),
                       file_name="errors.csv", mime="text/csv", key=_key("download"), icon=":material/download:",
                       on_click="ignore")
    limit_note("python -m core errors export --out errors.csv")


def code_options(stats: dict[str, Any]) -> list[str]:
    return [t["code"] for t in stats.get("top_codes", [])]


def default_range() -> tuple[datetime | None, None]:
    """(since, until) of the default time range, for option lists before the form is read."""
    return _time_range(_FILTER_DEFAULTS["range"], None)[0], None


@st.cache_data(ttl=60, show_spinner=False)
def _recent_components(url: str, viewer: Actor) -> list[str]:
    with acting_as(viewer):
        return recent_components(get_engine(url))


def component_options() -> list[str]:
    return _recent_components(get_settings().effective_database_url, current_person())
