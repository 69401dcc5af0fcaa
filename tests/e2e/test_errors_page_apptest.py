"""The Errors page runs one query: cards, table and CSV follow every filter; sorting and paging are the server's."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

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
