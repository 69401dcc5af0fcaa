"""Audit (admins only): who did what to what, and when; filtered, paged on the server."""

import streamlit as st

from core.ui import audit_view as view
from core.ui.boundaries import section

st.title("Audit")
st.caption("One row per audited action, written in the same transaction as the action. Nothing here can be edited.")

with section("trail"):
    flt = view.filters()
    event = view.listing(flt)
    view.detail(event)
