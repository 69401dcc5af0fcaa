"""Entrypoint: start-up once, who is signed in, navigation over app_pages/, the sidebar, an error boundary per page run.

With sign-in configured, a visitor who has not signed in gets the sign-in page and nothing else:
no sidebar, no status, no toasts.

The pages live in app_pages/, not pages/: while a folder named pages/ exists, Streamlit serves
a deep link (say /batches) to the first visitor after a start as an old-style page, without
running this file, so that visitor would get no sidebar, no start-up and no worker.
"""

import streamlit as st

from core.ui.boundaries import app_boundary
from core.ui.shell import chaos_banner, navigation, session_panel, sidebar, startup
from core.ui.user import session_actor

st.set_page_config(page_title="LoRA Conversation Studio", page_icon="💬", layout="wide")

with app_boundary("app"):
    startup()
    person = session_actor()
    page = navigation(person)
    if person.is_person:
        sidebar(person)
        chaos_banner()
    with app_boundary(page.title):
        page.run()
    if person.is_person:
        session_panel()
