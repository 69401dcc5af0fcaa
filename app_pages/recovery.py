"""Recovery: what stopped half-way, why, and what to do about it — one click each; then cleanup."""

import streamlit as st

from core.ui import recovery_view as view
from core.ui.boundaries import section

st.title("Recovery")
st.caption("Work that stopped half-way, what happened, and the recommended next step. Nothing done is ever redone.")

found: dict = {}
with section("scan"):
    found = view.findings()
    counts = {k: len(v) for k, v in found.items()}
    st.markdown(" · ".join(f"**{n}** {k.replace('_', ' ')}" for k, n in counts.items()))

st.subheader("1. Batches that stopped")
with section("batches"):
    view.batches_step(found)
st.subheader("2. Drafts left open")
with section("drafts"):
    view.drafts_step(found)
st.subheader("3. Conversations out of step")
with section("conversations"):
    view.conversations_step(found)
st.subheader("4. Clean up expired data")
with section("cleanup"):
    view.cleanup_step()
