"""Who is using the app: the person signed in with Streamlit's login (OIDC), or the local user.

With `[auth]` in secrets.toml a visitor is nobody until they sign in, and sees only the sign-in
page. Each script run (Home.py), widget callback and fragment run (core.ui.boundaries) starts with
`session_actor()`: the session's person becomes the actor of the code that follows. The person is
found or created by core.auth.users.sign_in and kept in session state, so a rerun does not ask the
database again; a new page load (a new session), or `user_last_seen_interval_s` later, asks again,
so a role change shows. Without `[auth]` the app is in local mode: everyone is the user
STUDIO_USER names, and the sidebar says so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.auth import ANONYMOUS, Actor, current_actor, set_actor
from core.auth.local import use_local_user_by_default, use_nobody_by_default
from core.auth.users import Identity, identity_of, local_actor, sign_in
from core.config import get_settings
from core.errorlog import record
from core.store import get_engine
from core.ui.safe import literal

__all__ = ["account_panel", "current_person", "current_user", "login_configured", "providers", "session_actor",
           "session_id", "set_process_default", "sign_in_form"]

_SESSION_KEY = "_studio_session_id"
_ACTOR_KEY = "_studio_actor"


@dataclass(frozen=True)
class _Known:
    """The session's person as last looked up, for whom (None: local mode), and when (monotonic s)."""

    identity: Identity | None
    actor: Actor
    checked: float


def login_configured() -> bool:
    """Whether Streamlit's login ([auth] in the secrets Streamlit reads) is set up."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, OSError):
        return False  # no secrets file at all: login is not configured


def set_process_default() -> None:
    """Code that was given no actor acts as nobody once sign-in is configured, else as the local user."""
    if login_configured():
        use_nobody_by_default()
    else:
        use_local_user_by_default()


def _identity() -> Identity | None:
    """Who st.user says signed in, or None while nobody has."""
    user = st.user
    if not user.get("is_logged_in"):
        return None
    return identity_of(user.to_dict())


def session_actor() -> Actor:
    """The person of this session, made the actor of the running code: signed in, the local user, or nobody."""
    ident: Identity | None = None
    if login_configured():
        ident = _identity()
        if ident is None:
            st.session_state.pop(_ACTOR_KEY, None)
            set_actor(ANONYMOUS)
            return ANONYMOUS
    known = st.session_state.get(_ACTOR_KEY)
    if (not isinstance(known, _Known) or known.identity != ident
            or time.monotonic() - known.checked > get_settings().user_last_seen_interval_s):
        engine = get_engine()
        actor = local_actor(engine) if ident is None else sign_in(
            engine, issuer=ident.issuer, subject=ident.subject, email=ident.email, name=ident.name)
        known = st.session_state[_ACTOR_KEY] = _Known(ident, actor, time.monotonic())
    set_actor(known.actor)
    return known.actor


def current_person() -> Actor:
    """The actor of this run (session_actor() set it at the start)."""
    return current_actor(get_engine())


def current_user() -> str:
    """The acting person's name (else email), for showing who did something; "signed out" for nobody."""
    return current_person().label


def session_id() -> str:
    """A stable id for this browser session, kept in session state."""
    sid = st.session_state.get(_SESSION_KEY)
    if not sid:
        sid = st.session_state[_SESSION_KEY] = uuid.uuid4().hex[:16]
    return str(sid)


def providers() -> list[str | None]:
    """The sign-in providers of [auth]: None for the default one (its keys in [auth] itself), then named ones."""
    auth: Mapping[str, Any] = st.secrets.get("auth") or {}
    named = [str(k) for k, v in auth.items() if isinstance(v, Mapping) and "client_id" in v]
    return ([None] if "client_id" in auth or not named else []) + named


def sign_in_form() -> None:
    """The sign-in page: what the app is, and a button per provider."""
    st.title("Sign in")
    st.markdown("**LoRA Conversation Studio** — sign in with your organisation's account to continue.")
    for provider in providers():
        label = "Sign in" if provider is None else f"Sign in with {provider.replace('-', ' ').title()}"
        if st.button(label, key=f"_studio_sign_in.{provider or 'default'}", type="primary",
                     icon=":material/login:"):
            try:
                st.login(provider)
            except StreamlitAPIException as exc:  # [auth] is incomplete, or Authlib is missing
                record(exc, component="ui.sign_in")
                st.error("Sign-in is not set up correctly, so nobody can sign in yet. The operator needs to "
                         "fix the [auth] section of secrets.toml (see the README, “Sign-in”).",
                         icon=":material/error:")
    st.caption("Your account is created as an analyst at your first sign-in; an admin can change your role.")


def _sign_out() -> None:
    st.session_state.pop(_ACTOR_KEY, None)
    st.logout()


def account_panel(person: Actor) -> None:
    """The sidebar's line about who is signed in: local mode says so; signed in, a Sign out button."""
    if not login_configured():
        # the local user's name is "analyst" by default while its role may be admin: the role is said apart
        st.caption(f":material/person: Local mode — signed in as {literal(person.label)}, role "
                   f"{literal(person.role or 'analyst')} (no sign-in configured)")
        return
    st.caption(f":material/person: Signed in as {literal(person.label)} · {literal(person.role or 'analyst')}")
    st.button("Sign out", key="_studio_sign_out", on_click=_sign_out, icon=":material/logout:")
