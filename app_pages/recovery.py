"""Recovery: what stopped half-way, why, and what to do about it — one click each; then cleanup."""

import streamlit as st

from core.ui import recovery_view as view
from core.ui.boundaries import section

st.title("Recovery")
st.caption("Work that stopped half-way, what happened, and the recommended next step. Nothing done is ever redone.")

with section("scan"):
    view.summary()

st.subheader("1. Batches that stopped")
with section("batches"):
    view.batches_step()
st.subheader("2. Drafts left open")
with section("drafts"):
    view.drafts_step()
st.subheader("3. Conversations out of step")
with section("conversations"):
    view.conversations_step()
st.subheader("4. Clean up expired data")
with section("cleanup"):
    view.cleanup_step()
