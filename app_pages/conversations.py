"""Conversations: browse and filter, the set's dataset health, read one as a chat, export a trainer-ready dataset."""

import streamlit as st

from core.ui import conversations_view as view
from core.ui import health_view
from core.ui.boundaries import section, section_key

st.title("Conversations")

flt = None
with section("filters"):
    flt = view.filters()

if flt is not None:
    # Keyed and tracked by the server: it stays open across reruns (an unkeyed one could fold shut
    # while its contents changed), and the export is only counted while it is open.
    with section("export"), st.expander("Export a dataset", icon=":material/download:",
                                        key=section_key("export", "open"), on_change="rerun") as box:
        if box.open:
            view.exports(flt)
    left, right = st.columns([3, 2])
    shown = None
    with left, section("list"):
        shown = view.listing(flt)
    with right, section("chat"):
        view.chat(shown)
    with section("health"):
        health_view.health_panel(flt)
