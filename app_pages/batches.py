"""Batches: create from a grid or a CSV (with an estimate), watch live progress, act in one click."""

import streamlit as st

from core.config import get_settings
from core.ui import batches_view as view
from core.ui.boundaries import fragment, section

st.title("Batches")

with st.expander("New batch", expanded=True, icon=":material/add:"):
    grid_tab, csv_tab = st.tabs(["From choices", "From a CSV file"])
    with grid_tab, section("create_grid"):
        view.create_from_grid()
    with csv_tab, section("create_csv"):
        view.create_from_csv()


@fragment(run_every=get_settings().ui_live_refresh_s)
def live() -> None:
    """Progress, ETA, throughput, tokens and cost refresh on their own."""
    listed: list[str] = []
    with section("list"):
        listed = view.live_list()
    batch_id = view.selected_batch()
    if batch_id:
        with section("detail"):
            view.detail(batch_id, listed)


live()
