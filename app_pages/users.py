"""Users (admins only): who has signed in or been added, and their roles; a role changes after a confirmation."""

import streamlit as st

from core.ui import users_view as view
from core.ui.boundaries import section

st.title("Users")
st.caption("People are created as analysts at their first sign-in; emails in STUDIO_ADMIN_EMAILS become admins. "
           "Add someone ahead of their first sign-in with `python -m core users add EMAIL --role ROLE`.")

users: list = []
with section("list"):
    users = view.listing()
st.subheader("Change a role")
with section("role"):
    view.role_change(users)
