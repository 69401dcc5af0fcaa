"""The Errors page runs one query: cards, table and CSV follow every filter; sorting and paging are the server's."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from e2e_data import open_groups
from sqlalchemy import func, select

from core.errorlog import SEVERITY_ORDER, ErrorFilter
from core.errorlog.export import export_csv
from core.store.schema import error_logs


def _card(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _table_total(at) -> int:
    caption = next(c.value for c in at.caption if "matching rows" in c.value)
    return int(caption.split("·")[1].split()[0].replace(",", ""))


def _csv_rows(engine, flt: ErrorFilter) -> int:
    return export_csv(engine, flt, io.StringIO(newline=""))


def _last_7_days() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=7)


def test_cards_table_and_csv_agree_when_filtered_to_one_batch_or_one_severity(open_page, engine):
    """Filtered to one batch, then to severity critical, the Errors card, the table's count and the CSV agree."""
    c = error_logs.c
    with engine.connect() as conn:
        batch = conn.execute(select(c.operation_id).where(c.operation_id.is_not(None))
                             .group_by(c.operation_id).order_by(func.count()).limit(1)).scalar_one()
        everything = conn.execute(select(func.count()).select_from(error_logs)).scalar_one()
    at = open_page("errors")
    at.text_input(key="errors.batch").input(batch).run()
    assert not at.exception
    by_batch = _csv_rows(engine, ErrorFilter(operation_id=batch, since=_last_7_days()))
    assert _card(at, "Errors") == _table_total(at) == by_batch
    assert 0 < by_batch < everything
    at.button(key="errors.clear").click().run()
    at.multiselect(key="errors.severities").select("critical").run()
    critical = _csv_rows(engine, ErrorFilter(severities=["critical"], since=_last_7_days()))
    assert _card(at, "Errors") == _card(at, "Critical") == _table_total(at) == critical
    assert 0 < critical < everything


def test_every_filter_moves_the_card_with_the_table(open_page, engine):
    """Search, type, code, component, request id and status each narrow the Errors card to the table's count."""
    with engine.connect() as conn:
        row = conn.execute(select(error_logs).where(error_logs.c.request_id.is_not(None),
                                                    error_logs.c.component.is_not(None))
                           .order_by(error_logs.c.id.desc()).limit(1)).one()
    at = open_page("errors")
    steps = [
        lambda: at.text_input(key="errors.search").input(row.error_code[:6]),
        lambda: at.multiselect(key="errors.types").select(row.error_type),
        lambda: at.multiselect(key="errors.codes").select(row.error_code),
        lambda: at.multiselect(key="errors.components").select(row.component),
        lambda: at.selectbox(key="errors.resolved").select("Open" if not row.resolved else "Resolved"),
        lambda: at.text_input(key="errors.request").input(row.request_id),
    ]
    for step in steps:
        at.button(key="errors.clear").click().run()
        step().run()
        assert not at.exception
        assert _card(at, "Errors") == _table_total(at) > 0, (steps.index(step), row)


def test_sorting_by_time_ascending_shows_the_oldest_row_first(open_page, engine):
    """Ascending time puts the seeded log's oldest row of the range on top of page 1; severity puts critical on top."""
    c = error_logs.c
    with engine.connect() as conn:
        oldest = conn.execute(select(c.error_id).where(c.created_at >= _last_7_days())
                              .order_by(c.created_at, c.id).limit(1)).scalar_one()
    at = open_page("errors")
    at.selectbox(key="errors.range").select("All time").run()
    at.segmented_control(key="errors.order").set_value("oldest").run()
    at.selectbox(key="errors.range").select("Last 7 days").run()
    assert not at.exception
    assert at.dataframe[0].value.iloc[0]["error_id"] == "…" + oldest[-8:]
    at.selectbox(key="errors.sort").select("severity").run()
    at.segmented_control(key="errors.order").set_value("newest").run()
    ranks = [SEVERITY_ORDER.index(s) for s in at.dataframe[0].value["severity"]]
    assert ranks[0] == SEVERITY_ORDER.index("critical") and ranks == sorted(ranks, reverse=True)


def test_paging_jumps_to_the_last_page_and_page_size_changes_the_rows(open_page, engine):
    """Last shows the final page, First goes back; 25 rows per page shows 25 rows and more pages."""
    at = open_page("errors")
    at.selectbox(key="errors.page_size").select(25).run()
    assert len(at.dataframe[0].value) == 25
    total = _table_total(at)
    pages = -(-total // 25)
    at.button(key="errors.last").click().run()
    assert f"Page {pages:,} of {pages:,}" in next(c.value for c in at.caption if "matching rows" in c.value)
    assert len(at.dataframe[0].value) == total - 25 * (pages - 1)
    at.button(key="errors.first").click().run()
    assert "Page 1 of" in next(c.value for c in at.caption if "matching rows" in c.value)
    at.number_input(key=f"errors.jump_1_{pages}").set_value(2).run()
    assert "Page 2 of" in next(c.value for c in at.caption if "matching rows" in c.value)


def test_the_table_speaks_plain_words_and_never_shows_none(open_page):
    """Headers say Type and Code, blanks stay blank, ids are short, and Clear filters empties the bar."""
    at = open_page("errors")
    frame = at.dataframe[0].value
    assert not frame.isin(["None"]).any().any() and not frame.isna().drop(columns=["created_at"]).any().any()
    assert all(len(v) <= 9 for v in frame["error_id"])
    at.text_input(key="errors.search").input("nothing matches this").run()
    assert _table_total(at) == 0
    at.button(key="errors.clear").click().run()
    assert at.text_input(key="errors.search").value == "" and _table_total(at) > 0


def _insert_breaker_events(engine) -> None:
    import uuid

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(error_logs.insert(), [
            {"error_id": uuid.uuid4().hex, "created_at": now - timedelta(minutes=10 - i), "error_type": "api",
             "error_code": code, "severity": "warn" if code == "circuit_opened" else "info",
             "message": f"Circuit 'claude' is now {state}: test", "component": "breaker.claude",
             "context": {"service": "claude", "state": state}, "fingerprint": f"{i}" * 32,
             "is_recoverable": True, "recovered": code == "circuit_closed", "resolved": False}
            for i, (code, state) in enumerate([("circuit_opened", "open"), ("circuit_half_open", "half_open"),
                                               ("circuit_closed", "closed")])])


def test_breaker_state_changes_stay_out_of_the_errors_card_until_shown(open_page, engine):
    """Opened, half-open and closed rows are events: not in the Errors card or table unless Show asks for them."""
    _insert_breaker_events(engine)
    errors_only = _csv_rows(engine, ErrorFilter(since=_last_7_days()))
    at = open_page("errors")
    assert _card(at, "Errors") == _table_total(at) == errors_only
    assert not {"circuit_opened", "circuit_closed"} & set(at.dataframe[0].value["error_code"])
    at.selectbox(key="errors.kind").select("event").run()
    assert not at.exception
    assert _card(at, "Events") == _table_total(at) == 3
    assert set(at.dataframe[0].value["error_code"]) == {"circuit_opened", "circuit_half_open", "circuit_closed"}
    at.selectbox(key="errors.kind").select("all").run()
    assert _card(at, "Errors and events") == _table_total(at) == errors_only + 3


def test_home_lists_breaker_changes_and_counts_only_errors(open_page, engine):
    """Home's breaker history shows the state changes; its warn count leaves the opened event out."""
    from e2e_data import shown

    warn_before = _card(open_page("home"), "warn")
    _insert_breaker_events(engine)
    at = open_page("home")
    text = "\n".join(shown(m.value) for m in at.markdown)
    assert "Breaker history** (3 state changes in 24 h)" in text and "claude half-open" in text
    assert _card(at, "warn") == warn_before


def test_a_group_opens_to_its_rows(open_page, engine):
    """Show rows on a group narrows the table to that fingerprint, and All rows widens it again."""
    at = open_groups(open_page)
    button = next(b for b in at.button if b.key and b.key.startswith("errors.open_group_"))
    fp = button.key.removeprefix("errors.open_group_")
    everything = _table_total(open_page("errors"))
    button.click().run()
    at.session_state["errors.tabs"] = "Rows"
    at.run()
    in_group = _csv_rows(engine, ErrorFilter(fingerprint=fp, since=_last_7_days()))
    assert _table_total(at) == _card(at, "Errors") == in_group < everything
    at.button(key="errors.drop_fingerprint").click().run()
    assert _table_total(at) == everything


def test_resolve_all_says_how_many_rows_and_asks_first(open_page, engine):
    """Resolve all first asks "Resolve N rows?", Cancel changes nothing, the confirm resolves exactly N."""
    at = open_groups(open_page)
    button = next(b for b in at.button if b.key and b.key.startswith("errors.resolve_group_"))
    fp = button.key.removeprefix("errors.resolve_group_")
    open_rows = _csv_rows(engine, ErrorFilter(fingerprint=fp, resolved=False, kind=None))
    button.click().run()
    label = f"{open_rows:,} {'row' if open_rows == 1 else 'rows'}"
    assert any(f"Resolve {label.replace(' ', ' open ', 1)}" in w.value for w in at.warning)
    assert _csv_rows(engine, ErrorFilter(fingerprint=fp, resolved=False, kind=None)) == open_rows
    at.button(key=f"errors.confirm_no_{fp}").click().run()
    assert not [w for w in at.warning if "Resolve" in w.value] and _csv_rows(engine, ErrorFilter(fingerprint=fp, resolved=False, kind=None)) == open_rows
    at.button(key=f"errors.resolve_group_{fp}").click().run()
    yes = at.button(key=f"errors.confirm_yes_{fp}")
    assert yes.label == f"Resolve {label}"
    yes.click().run()
    assert not at.exception
    assert _csv_rows(engine, ErrorFilter(fingerprint=fp, resolved=False, kind=None)) == 0


def _chart(at, key: str) -> tuple[dict, list[dict]]:
    """The Vega-Lite spec of the chart whose key contains `key`, and its rows (Streamlit sends them as Arrow)."""
    import json

    import pyarrow as pa

    chart = next(c for c in at.get("vega_lite_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec), pa.ipc.open_stream(chart.proto.data.data).read_all().to_pylist()


def _span(spec: dict) -> timedelta:
    """How much time the x axis of the over-time chart covers."""
    first, last = (datetime(d["year"], d["month"], d["date"], d["hours"], d["minutes"], tzinfo=UTC)
                   for d in spec["encoding"]["x"]["scale"]["domain"])
    return last - first


def test_charts_of_the_last_hour_have_a_bar_a_minute_and_keep_the_legend_off_the_axis(open_page, engine):
    """Over the last hour an incident spreads over minute bars; over 30 days the bars are days; legends sit on top."""
    from e2e_data import insert_critical_error

    for _ in range(3):
        insert_critical_error(engine)
    at = open_page("errors")
    at.selectbox(key="errors.range").select("Last hour").run()
    spec, rows = _chart(at, "chart_time")
    assert "per minute" in spec["title"]["text"] and rows
    assert spec["encoding"]["x"]["timeUnit"] == "utcyearmonthdatehoursminutes"  # a bar is one minute wide
    assert timedelta(minutes=60) <= _span(spec) <= timedelta(minutes=62)  # of the whole hour, not the rows' minutes
    assert spec["encoding"]["color"]["legend"]["orient"] == "top"  # above the plot, never over the x-axis labels
    at.selectbox(key="errors.range").select("Last 30 days").run()
    spec, rows = _chart(at, "chart_time")
    assert "per day" in spec["title"]["text"] and spec["encoding"]["x"]["timeUnit"] == "utcyearmonthdate"
    assert timedelta(days=30) <= _span(spec) <= timedelta(days=31) and len({r["start"] for r in rows}) <= 31
    at.selectbox(key="errors.range").select("Last 24 hours").run()
    assert "per hour" in _chart(at, "chart_time")[0]["title"]["text"]
