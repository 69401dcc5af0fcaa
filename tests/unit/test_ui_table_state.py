"""One table-state helper owns filters → page → selection; a selection is an id, never a row position."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

SCRIPT = """
import pandas as pd
import streamlit as st
from core.store.paging import Page
from core.ui.table_state import TableState

ROWS = {"all": [f"id{i}" for i in range(25)], "few": ["id3", "id7"]}
flt = st.session_state.get("flt", "all")
state = TableState("demo", flt)
page = state.load(lambda n: Page([{"id": i} for i in ROWS[flt][(n - 1) * 10:n * 10]], len(ROWS[flt]), n, 10))
picked = state.grid(pd.DataFrame(page.rows), [r["id"] for r in page.rows])
state.pager(page, prefix="demo.", caption=f"page {page.page} of {page.pages}")
st.text(f"selected={picked.id} clicked={picked.clicked} rows={len(page.rows)}")
"""


def _run() -> AppTest:
    return AppTest.from_string(SCRIPT, default_timeout=30).run()


def _select(at: AppTest, position: int) -> None:
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    at.run()


def _shown(at: AppTest) -> str:
    return at.text[0].value


def _caption(at: AppTest) -> str:
    return at.caption[0].value


def test_a_selection_is_the_id_of_the_row_at_that_position():
    """Selecting the third row gives that row's id, counted as a click once."""
    at = _run()
    _select(at, 2)
    assert _shown(at) == "selected=id2 clicked=True rows=10"
    at.run()
    assert _shown(at) == "selected=id2 clicked=False rows=10"


def test_a_new_filter_clears_the_selection_and_goes_back_to_page_one():
    """On page 3 with a row selected, a new filter shows page 1 and nothing selected."""
    at = _run()
    at.button(key="demo.last").click().run()
    assert _caption(at) == "page 3 of 3"
    _select(at, 1)
    at.session_state["flt"] = "few"
    at.run()
    assert not at.exception
    assert _caption(at) == "page 1 of 1"
    assert _shown(at) == "selected=None clicked=False rows=2"


def test_paging_clears_the_selection():
    """A row selected on page 1 is not carried to the same position on page 2."""
    at = _run()
    _select(at, 0)
    at.button(key="demo.next").click().run()
    assert _caption(at) == "page 2 of 3"
    assert _shown(at) == "selected=None clicked=False rows=10"


def test_a_page_past_the_end_is_clamped_to_the_last():
    """A jump beyond the last page shows the last page, never "page 4 of 3"."""
    at = _run()
    at.session_state["demo.page"] = 9
    at.run()
    assert _caption(at) == "page 3 of 3"
    assert _shown(at).endswith("rows=5")


CARDS = """
import streamlit as st
from core.store.paging import Page
from core.ui.table_state import TableState

ROWS = {"all": [f"id{i}" for i in range(25)], "few": ["id3", "id7"]}
flt = st.session_state.get("flt", "all")
state = TableState("cards", flt)
page = state.load(lambda n: Page([{"id": i} for i in ROWS[flt][(n - 1) * 10:n * 10]], len(ROWS[flt]), n, 10))
ids = [r["id"] for r in page.rows]
for i in ids:
    st.button(i, key=f"pick_{i}", on_click=state.choose, args=(i,))
state.footer(page, "card", prefix="cards.")
st.text(f"chosen={state.chosen(ids)}")
"""


def test_a_card_chosen_by_its_button_is_dropped_by_a_new_filter_or_page():
    """A card chosen with its button stays chosen across reruns; a filter or Next drops it."""
    at = AppTest.from_string(CARDS).run()
    at.button(key="pick_id4").click().run()
    assert _shown(at) == "chosen=id4"
    at.run()
    assert _shown(at) == "chosen=id4"
    at.button(key="cards.next").click().run()
    assert _shown(at) == "chosen=None"
    at.button(key="pick_id13").click().run()
    at.session_state["flt"] = "few"
    at.run()
    assert _shown(at) == "chosen=None"


def test_the_footer_counts_every_row_not_the_page():
    """The footer says "11–20 of 25 cards" on page 2 and just "2 cards" when one page holds them all."""
    at = AppTest.from_string(CARDS).run()
    assert _caption(at) == "1–10 of 25 cards · page 1 of 3"
    at.button(key="cards.next").click().run()
    assert _caption(at) == "11–20 of 25 cards · page 2 of 3"
    at.session_state["flt"] = "few"
    at.run()
    assert _caption(at) == "2 cards" and not [b for b in at.button if b.key == "cards.next"]
