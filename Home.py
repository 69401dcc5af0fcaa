"""Entrypoint: start-up once, navigation over pages/, the sidebar, and an error boundary per page run."""

import streamlit as st

from core.ui.boundaries import app_boundary
from core.ui.shell import navigation, session_panel, sidebar, startup

st.set_page_config(page_title="LoRA Conversation Studio", page_icon=":material/forum:", layout="wide")

with app_boundary("app"):
    startup()
    page = navigation()
    sidebar()
    with app_boundary(page.title):
        page.run()
    session_panel()
