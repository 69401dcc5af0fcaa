"""Settings: model, retries, breakers, rate limits, autosave, sandbox chaos, health checks."""

import streamlit as st

from core.ui import settings_view as view
from core.ui.boundaries import section

st.title("Settings")
st.caption("Changes are validated, saved in the database and in effect at once, without a restart.")

with section("provider"):
    view.provider()

left, right = st.columns([3, 2])
with left, section("form"):
    view.form()
with right:
    with section("chaos"):
        st.subheader("Chaos switch")
        view.chaos()
    with section("health"):
        st.subheader("Health")
        view.health()
    with section("prices"):
        st.subheader("Model prices")
        view.model_prices()
