"""Who is using the app: `st.user` when Streamlit's login is configured, else the settings name."""

from __future__ import annotations

import uuid

import streamlit as st

from core.config import get_settings
from core.errorlog import record

__all__ = ["current_user", "login_configured", "login_widget", "session_id"]

_SESSION_KEY = "_studio_session_id"


def current_user() -> str:
    """The signed-in user's email or name; `settings.user_name` when login is not configured."""
    try:
        user = st.user
        if user.get("is_logged_in"):
            return str(user.get("email") or user.get("name") or get_settings().user_name)
    except (AttributeError, KeyError, RuntimeError) as exc:
        # st.user raises when auth is half-configured; the app still works with the settings name

        record(exc, component="ui.user", severity="debug")
    return get_settings().user_name


def session_id() -> str:
    """A stable id for this browser session, kept in session state."""
    sid = st.session_state.get(_SESSION_KEY)
    if not sid:
        sid = st.session_state[_SESSION_KEY] = uuid.uuid4().hex[:16]
    return str(sid)


def login_configured() -> bool:
    """Whether Streamlit's login ([auth] in secrets.toml) is set up."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):
        return False  # no secrets file at all: login is not configured


def login_widget() -> None:
    """Log in / log out buttons, only when Streamlit's login is configured."""
    if not login_configured():
        return
    if st.user.get("is_logged_in"):
        st.button("Log out", key="_studio_logout", on_click=st.logout, icon=":material/logout:")
    else:
        st.button("Log in", key="_studio_login", on_click=st.login, icon=":material/login:")
