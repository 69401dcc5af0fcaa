"""Conversations: browse and filter, read one as a chat, export the filtered set (JSONL, CSV)."""

import streamlit as st

from core.ui import conversations_view as view
from core.ui.boundaries import section

st.title("Conversations")

flt = None
with section("filters"):
    flt = view.filters()

if flt is not None:
    with section("export"):
        view.exports(flt)
    left, right = st.columns([3, 2])
    shown = None
    with left, section("list"):
        shown = view.listing(flt)
    with right, section("chat"):
        view.chat(shown)
