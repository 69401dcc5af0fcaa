"""Entrypoint: start-up once, navigation over app_pages/, the sidebar, and an error boundary per page run.

The pages live in app_pages/, not pages/: while a folder named pages/ exists, Streamlit serves
a deep link (say /batches) to the first visitor after a start as an old-style page, without
running this file, so that visitor would get no sidebar, no start-up and no worker.
"""

import streamlit as st

from core.ui.boundaries import app_boundary
from core.ui.shell import chaos_banner, navigation, session_panel, sidebar, startup

st.set_page_config(page_title="LoRA Conversation Studio", page_icon="💬", layout="wide")

with app_boundary("app"):
    startup()
    page = navigation()
    sidebar()
    chaos_banner()
    with app_boundary(page.title):
        page.run()
    session_panel()
