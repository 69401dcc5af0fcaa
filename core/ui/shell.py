"""The frame around every page: start-up once per process, the page list, and the sidebar."""

from __future__ import annotations

from collections import deque
from typing import Any

import streamlit as st

from core import settings_store
from core.auth import Action, Actor, Kind, may
from core.batches.background import start_background_worker
from core.config import get_settings
from core.errorlog import recent
from core.errorlog.alerts import latest_error_pk, new_critical, start_watcher
from core.llm.chaos import faults_in_force
from core.resilience import all_breakers
from core.runtime import settle_heap, unstall_listeners
from core.store import get_engine, migrate
from core.ui.boundaries import SESSION_ERRORS_KEY, fragment, report_error
from core.ui.safe import literal
from core.ui.user import account_panel, session_id, set_process_default
from core.ui.widgets import ago, breaker_badge, severity_badge

__all__ = ["ADMIN_PAGES", "PAGES", "REVIEW_PAGE", "SIGN_IN_PAGE", "chaos_banner", "navigation", "session_errors", "session_panel",
           "sidebar", "startup"]

# (file, title, material icon); the first is the default page
PAGES: tuple[tuple[str, str, str], ...] = (
    ("app_pages/home.py", "Home", ":material/home:"),
    ("app_pages/generate.py", "Generate", ":material/edit_note:"),
    ("app_pages/batches.py", "Batches", ":material/stacks:"),
    ("app_pages/templates.py", "Templates", ":material/description:"),
    ("app_pages/conversations.py", "Conversations", ":material/forum:"),
    ("app_pages/errors.py", "Errors", ":material/bug_report:"),
    ("app_pages/recovery.py", "Recovery", ":material/healing:"),
    ("app_pages/settings.py", "Settings", ":material/settings:"),
)

# after Conversations for those who may review (reviewers and admins); for anyone else its URL does not exist
REVIEW_PAGE: tuple[str, str, str] = ("app_pages/review.py", "Review", ":material/rate_review:")

# only admins have these in their navigation; for anyone else their URLs do not exist ("Page not found")
ADMIN_PAGES: tuple[tuple[str, str, str], ...] = (
    ("app_pages/users.py", "Users", ":material/group:"),
    ("app_pages/audit.py", "Audit", ":material/history_edu:"),
)
SIGN_IN_PAGE = "app_pages/sign_in.py"

PROVIDER_TEXT = {
    "sandbox": "Offline sandbox — text is generated locally, not by Claude",
    "claude": "Claude (Anthropic API)",
    "endpoint": "Anthropic-compatible endpoint",
}


@st.cache_resource(show_spinner=False)
def _startup(database_url: str) -> dict[str, Any]:
    """Once per process and database: migrate, apply saved settings, start background threads."""
    engine = get_engine(database_url)
    migrate(engine)
    settings, skipped = settings_store.apply_persisted(engine)
    worker = None
    if settings.ui_background_worker:
        worker = start_background_worker()
    start_watcher(engine)
    return {"skipped_settings": skipped, "worker": worker}


def startup() -> dict[str, Any]:
    started = _startup(get_settings().effective_database_url)
    set_process_default()  # with sign-in configured, a thread given no actor acts as nobody
    return started


def _url_path(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".py")


def navigation(person: Actor) -> Any:
    """st.navigation over the pages `person` may open; signed out, the sign-in page alone, on every page's URL.

    The sign-in page stands in for each page's URL (hidden), so a deep link such as /batches?batch=...
    shows the sign-in page itself rather than a "page not found" notice over it.
    """
    if not person.is_person:
        signs_in = [st.Page(SIGN_IN_PAGE, title="Sign in", icon=":material/login:", default=True)]
        signs_in += [st.Page(SIGN_IN_PAGE, title="Sign in", url_path=_url_path(path), visibility="hidden")
                     for path, _title, _icon in (*PAGES, REVIEW_PAGE, *ADMIN_PAGES)]
        return st.navigation(signs_in, position="hidden")
    listed = list(PAGES)
    if may(person, Action.REVIEW, Kind.CONVERSATION):
        listed.insert(next(i for i, p in enumerate(PAGES) if p[1] == "Conversations") + 1, REVIEW_PAGE)
    pages = [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon) in enumerate(listed)]
    if not may(person, Action.VIEW, Kind.USERS):
        return st.navigation(pages)
    admin = [st.Page(path, title=title, icon=icon) for path, title, icon in ADMIN_PAGES]
    return st.navigation({"Studio": pages, "Admin": admin})


def session_errors() -> list[dict[str, Any]]:
    """This session's errors (newest first, at most 50): caught in pages, or recorded with its id."""
    own = list(st.session_state.get(SESSION_ERRORS_KEY) or deque())
    seen = {e.get("error_id") for e in own}
    sid = session_id()
    for e in recent(50):
        if e.get("session_id") == sid and e.get("error_id") not in seen:
            own.append({"at": e.get("created_at"), "error_id": e.get("error_id"), "code": e.get("error_code"),
                        "severity": e.get("severity"), "user_message": e.get("user_message"),
                        "component": e.get("component")})
    own.sort(key=lambda e: str(e.get("at") or ""), reverse=True)
    return own[:50]


def chaos_banner() -> None:
    """On every page while the chaos switch is on: the failures a person sees are made on purpose."""
    faults = faults_in_force()
    if faults:
        st.warning(f"**Chaos switch on:** {literal(faults)} (sandbox fault injection). "
                   "[Turn it off in Settings → Chaos switch](/settings)", icon=":material/bolt:")


def _provider() -> None:
    provider = get_settings().provider
    text = PROVIDER_TEXT.get(provider, provider)
    if provider == "sandbox":
        st.warning(text, icon=":material/cloud_off:")
    else:
        st.success(text, icon=":material/cloud_done:")


def _breakers() -> None:
    snaps = all_breakers()
    if not snaps:
        st.caption("Circuit breakers: no calls yet")
        return
    st.markdown("Circuit breakers  \n" + " ".join(breaker_badge(s) for s in snaps))


def _critical_toasts() -> None:
    """Toast each new critical error once per session (high-water mark in session state)."""
    engine = get_engine()
    mark = st.session_state.get("_studio_critical_mark")
    if mark is None:
        st.session_state["_studio_critical_mark"] = latest_error_pk(engine)
        return
    rows, st.session_state["_studio_critical_mark"] = new_critical(engine, int(mark), limit=5)
    # an error this session already showed (its toast, or the page's own message) is not shown twice
    shown = {e.get("error_id") for e in st.session_state.get(SESSION_ERRORS_KEY) or ()}
    for row in rows:
        if row["error_id"] in shown:
            continue
        st.toast(f"Critical error: {literal(row['user_message'])} ({literal(row['error_code'])}, id "
                 f"{literal(row['error_id'])}) [Open Errors](/errors)", icon=":material/crisis_alert:", duration="long")


def _live_status() -> None:
    try:
        _breakers()
        _critical_toasts()
    except Exception as exc:  # noqa: BLE001 - the sidebar must never take the page down
        err, error_id = report_error(exc, component="ui.sidebar.status")
        st.caption(f"Status unavailable: {literal(err.user_message)} (error id {literal(error_id)})")


def session_panel() -> None:
    """The sidebar list of this session's errors; call it after the page ran so it includes them."""
    errors = session_errors()
    with st.sidebar, st.expander(f"Errors of this session ({len(errors)})", icon=":material/history:"):
        if not errors:
            st.caption("None so far.")
        for e in errors:
            at = e.get("at")
            st.markdown(f"{severity_badge(str(e.get('severity')))} {literal(e.get('user_message'))}")
            st.caption(f"{literal(e.get('code'))} · {literal(e.get('component'))} · id {literal(e.get('error_id'))}"
                       f" · {literal(ago(at) if hasattr(at, 'tzinfo') else at)}")


def sidebar(person: Actor) -> None:
    with st.sidebar:
        _provider()
        fragment(run_every=max(get_settings().ui_live_refresh_s, 2.0) * 2.5)(_live_status)()
        account_panel(person)


# The app's server socket is bound before the first script run, so its connections from now on
# get TCP_NODELAY (see unstall_listeners); the first visitor's connections are already open.
unstall_listeners()

# Process start-up. Streamlit runs Home.py again for every session and every rerun, but
# imports this module once per process, while the first script run has done nothing but
# import: here, and not in _startup() (which runs inside that first session's run), freezing the
# heap pins only what lives as long as the process, never one session's frames, widgets or
# state. What is frozen is what the start-up needs (Streamlit, the store, the worker's modules);
# the SDK and pandas load later, the SDK in the worker's thread, so the first page does not
# wait for them (in _startup() that thread raced the freeze).
settle_heap()
