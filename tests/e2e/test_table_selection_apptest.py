"""Selections and paging that cannot point at the wrong row (issue 12, items 9–11)."""

from __future__ import annotations

import re

from e2e_data import insert_conversation, select_row
from sqlalchemy import select

from core.store.schema import error_logs


def _dialog_ids(at, engine) -> list[str]:
    """The full error ids shown as code blocks: the detail dialog's id line."""
    with engine.connect() as conn:
        every = set(conn.execute(select(error_logs.c.error_id)).scalars())
    return [c.value for c in at.code if c.value in every]


def test_a_clicked_error_opens_its_own_detail_and_a_search_opens_none(open_page, engine):
    """The dialog shows the row clicked; searching afterwards opens no dialog, not another error's."""
    at = open_page("errors")
    shown_id = at.dataframe[0].value.iloc[1]["error_id"]
    select_row(at, 1)
    assert not at.exception
    opened = _dialog_ids(at, engine)
    assert len(opened) == 1 and opened[0].endswith(shown_id.lstrip("…"))
    at.text_input(key="errors.search").input("circuit").run()
    assert not at.exception
    assert _dialog_ids(at, engine) == []


def test_a_selection_opens_the_dialog_once_not_on_every_rerun(open_page, engine):
    """After the dialog was opened by a click, a later rerun of the page does not open it again."""
    at = open_page("errors")
    select_row(at, 0)
    assert len(_dialog_ids(at, engine)) == 1
    at.run()
    assert _dialog_ids(at, engine) == []


def test_paging_clears_the_errors_selection(open_page, engine):
    """A row selected on page 1 is not selected on page 2: Next opens no dialog."""
    at = open_page("errors")
    select_row(at, 0)
    at.button(key="errors.next").click().run()
    assert not at.exception
    assert _dialog_ids(at, engine) == []
    assert "Page 2 of" in next(c.value for c in at.caption if "matching rows" in c.value)


def test_an_error_id_typed_opens_once(open_page, engine):
    """An id entered in "Open an error by id" opens its detail, and a later filter change does not reopen it."""
    with engine.connect() as conn:
        error_id = conn.execute(select(error_logs.c.error_id).limit(1)).scalar_one()
    at = open_page("errors")
    at.text_input(key="errors.open_id").input(error_id).run()
    assert _dialog_ids(at, engine) == [error_id]
    at.selectbox(key="errors.resolved").select("Open").run()
    assert _dialog_ids(at, engine) == []


def _page_caption(at) -> str:
    return next(c.value for c in at.caption if re.search(r"conversations? · page", c.value))


def test_narrowing_the_conversations_filter_after_a_selection_shows_page_one(open_page, engine, seeded):
    """Select the fifth conversation, narrow the filter to a one-conversation batch: no error, its one row is read."""
    from core.batches import service

    for _ in range(29):
        insert_conversation(engine)
    batch_id = service.create_batch(engine, template=seeded["template"], count=2)
    insert_conversation(engine, batch_id=batch_id, item_index=0)
    at = open_page("conversations")
    select_row(at, 4)
    assert not at.exception
    at.selectbox(key="conversations.source").set_value("A batch").run()
    at.text_input(key="conversations.batch").input(batch_id[:8]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "page 1 of 1" in _page_caption(at) and len(at.dataframe[0].value) == 1
    assert len(at.chat_message) == 2


def test_next_then_a_filter_goes_back_to_page_one(open_page, engine):
    """On page 2, choosing "Single generations" shows page 1 of its own pages, never "page 2 of 1"."""
    for _ in range(30):
        insert_conversation(engine)
    at = open_page("conversations")
    at.button(key="conversations.next").click().run()
    assert "page 2 of 2" in _page_caption(at)
    at.selectbox(key="conversations.source").set_value("Single generations").run()
    assert not at.exception
    assert "page 1 of" in _page_caption(at) and "page 2 of 1" not in _page_caption(at)


def test_a_batch_with_many_failed_items_pages_them_and_counts_them_all(open_page, engine, seeded):
    """120 failed items: the heading says 120, the first page shows 50, Next shows the next 50."""
    from core.batches import service
    from core.store.schema import batch_items

    batch_id = service.create_batch(engine, template=seeded["template"], count=120)
    with engine.begin() as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id)
                     .values(status="failed", last_error="boom", last_error_code="server_error", attempts=4))
    at = open_page("batches")
    at.button(key=f"batches.list_details_{batch_id}").click().run()
    assert not at.exception
    assert any("Failed items (120)" in m.value for m in at.markdown)
    failed = next(d for d in at.dataframe if "attempts" in d.value.columns)
    assert len(failed.value) == 50 and failed.value.iloc[0]["item"] == 0
    at.button(key="batches.failed_next").click().run()
    failed = next(d for d in at.dataframe if "attempts" in d.value.columns)
    assert len(failed.value) == 50 and failed.value.iloc[0]["item"] == 50


def test_the_conversations_table_speaks_plain_words_and_readable_times(open_page, engine):
    """Headers in words, the time as 'YYYY-MM-DD HH:MM:SS UTC' beside 'When': no raw ISO with an offset or None."""
    insert_conversation(engine)
    at = open_page("conversations")
    frame = at.dataframe[0].value
    assert {"When", "Created (UTC)", "Template", "Persona", "Topic", "Turns", "Cost ($)"} <= set(frame.columns)
    created = str(frame["Created (UTC)"].iloc[0])
    assert created.endswith(" UTC") and "+00:00" not in created and "T" not in created[:11]
    assert not frame.drop(columns=["When"]).astype(str).isin(["None", "nan"]).any().any()


def test_one_conversation_is_counted_in_the_singular(open_page, engine, seeded):
    """The pager says "1 conversation", not "1 conversations", and "2 conversations" for two."""
    at = open_page("conversations")
    at.selectbox(key="conversations.source").set_value("Single generations").run()  # the seeded one
    assert _page_caption(at).startswith("1 conversation · page 1 of 1"), _page_caption(at)
    insert_conversation(engine)
    at.run()
    assert _page_caption(at).startswith("2 conversations · page 1 of 1"), _page_caption(at)
