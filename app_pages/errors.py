"""Errors: stats, charts, groups by fingerprint, the searchable server-paged table, detail, CSV."""

import streamlit as st

from core.config import get_settings
from core.errorlog import ErrorFilter
from core.ui import errors_view as view
from core.ui.boundaries import fragment, section

st.title("Errors")
REFRESH_S = get_settings().ui_live_refresh_s * 5


@fragment(run_every=REFRESH_S)
def live_summary(form: view.FilterForm) -> None:
    """Stats cards and charts refresh on their own; the rest of the page stays put."""
    with section("stats"):
        stats = view.load_stats(form)
        view.stats_cards(stats, form.flt.kind if form.flt is not None else "error")
        view.charts(stats)


@fragment(run_every=REFRESH_S)
def live_table(flt: ErrorFilter) -> None:
    """The table refreshes as the cards do: a new error shows up without a reload."""
    with section("table"):
        view.table(flt)


form = view.FilterForm(None, *view.default_range())
with section("filters"):
    form = view.filters(view.code_options(view.load_stats(form)), view.component_options())

live_summary(form)

if form.flt is not None:
    with section("export"):
        view.export_button(form.flt)
    rows_tab, groups_tab = st.tabs(["Rows", "Groups by fingerprint"], key="errors.tabs", on_change="rerun")
    if rows_tab.open:
        with rows_tab:
            live_table(form.flt)
    if groups_tab.open:
        with groups_tab, section("groups"):
            view.groups(form.flt)
