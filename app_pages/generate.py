"""Generate: one conversation, streamed as it is written, autosaved as a draft, resumable."""

import streamlit as st

from core.ui import generate_view as view
from core.ui.boundaries import section

st.title("Generate a conversation")

with section("drafts"):
    view.offer_drafts()
with section("form"):
    view.form()
with section("result"):
    view.result()
with section("stream"):
    view.stream()
