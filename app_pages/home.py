"""Home: health at a glance — provider, breakers, active batches, errors of the last 24 h, drafts."""

import streamlit as st

from core.ui import home_view as view
from core.ui.boundaries import section

st.title("LoRA Conversation Studio")
st.caption("Generate multi-turn training conversations, one at a time or in batches, without losing work.")

with section("next"):
    view.next_actions()

with section("provider"):
    view.provider_and_breakers()

st.subheader("Errors, last 24 hours")
with section("errors"):
    view.errors_24h()

left, right = st.columns(2)
with left:
    st.subheader("Active batches")
    with section("batches"):
        view.active_batches()
with right:
    st.subheader("Unfinished drafts")
    with section("drafts"):
        view.unfinished_drafts()
