"""Templates: list with usage, create / duplicate / edit / archive, live preview, Try it, version diff, YAML files."""

import streamlit as st

from core.ui import templates_view as view
from core.ui.boundaries import section

st.title("Templates")

found = []
with section("list"):
    found = view.listing()

edited = None
left, right = st.columns([3, 2])
with left, section("editor"):
    edited = view.editor(found)
with right, section("preview"):
    st.subheader("Preview")
    if edited is not None:
        view.preview(*edited)

with st.expander("Compare versions", icon=":material/difference:"), section("diff"):
    view.diff(view.selected())
with st.expander("Import and export (YAML)", icon=":material/swap_vert:"), section("files"):
    view.transfer(found)
