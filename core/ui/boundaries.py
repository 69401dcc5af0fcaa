"""Error boundaries: a failing section (or page) shows a fallback while the rest keeps working.

`section(name)` is a context manager and a decorator. Whatever raises inside it is classified,
recorded in the error log (component ``ui.<page>.<section>``, with the user and session id), and
replaced on screen by a plain message, the error id and a "Try again" button that clears the
section's session-state keys (those starting with ``section_key(name, "")``, plus any listed in
`keys`). Stack traces appear only when ENVIRONMENT=development. Streamlit's own control flow
(st.rerun, st.stop, fragment reruns) is a BaseException and passes through untouched.

A widget callback (`on_click=`) runs before the page script, outside every section: decorated
with `@callback`, what it raises is classified and recorded the same way and shown at the top
of the page on the rerun that follows.

A callback, a fragment's rerun and a dialog's rerun do not run Home.py, so none of them would act as
the session's person: `@callback`, `fragment` and `dialog` make each run start as that person
(core.ui.user.session_actor). With sign-in configured, a fragment made with st.fragment directly
would act as nobody and see nothing (tests/unit/test_ui_actor_wrappers.py keeps them out).
"""

from __future__ import annotations

import functools
import re
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from core.config import get_settings
from core.errorlog import record
from core.errors import AppError, classify
from core.redact import redact_text, redact_traceback
from core.store import utcnow
from core.ui.safe import literal
from core.ui.user import session_actor, session_id

__all__ = [
    "SESSION_ERRORS_KEY",
    "app_boundary",
    "callback",
    "current_page",
    "dialog",
    "fragment",
    "remember_error",
    "report_error",
    "section",
    "section_key",
    "set_current_page",
]

SESSION_ERRORS_KEY = "_studio_session_errors"
_SESSION_ERRORS_MAX = 50
_PAGE_KEY = "_studio_current_page"
_CALLBACK_FAILURE_KEY = "_studio_callback_failure"


def set_current_page(name: str) -> None:
    """Remember the page being rendered; components are named ``ui.<page>.<section>``."""
    st.session_state[_PAGE_KEY] = _slug(name)


def current_page() -> str:
    return str(st.session_state.get(_PAGE_KEY, "app"))


def section_key(section_name: str, key: str) -> str:
    """A session-state key owned by `section_name`; "Try again" clears all of them."""
    return f"{_slug(section_name)}.{key}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "section"


def remember_error(err: AppError, error_id: str | None, component: str) -> None:
    """Add an error to this session's panel (the last 50)."""
    panel = st.session_state.get(SESSION_ERRORS_KEY)
    if not isinstance(panel, deque):
        panel = st.session_state[SESSION_ERRORS_KEY] = deque(maxlen=_SESSION_ERRORS_MAX)

    panel.appendleft({
        "at": utcnow(), "error_id": error_id, "code": err.code, "severity": str(err.severity),
        "user_message": redact_text(err.user_message), "component": component,
    })


def report_error(exc: BaseException, *, component: str, context: dict[str, Any] | None = None,
                 recovered: bool = False) -> tuple[AppError, str | None]:
    """Classify, record (with user and session) and remember an error; returns it and its id."""
    err = classify(exc)
    # the row's user is the acting person's id (the recorder reads the actor)
    error_id = record(err, component=component, context=context, session_id=session_id(),
                      request_id=err.request_id, recovered=recovered)
    remember_error(err, error_id, component)
    return err, error_id


def _reset_keys(prefix: str, keys: tuple[str, ...]) -> None:
    for key in list(st.session_state.keys()):
        if str(key).startswith(prefix) or key in keys:
            del st.session_state[key]


def _fallback(err: AppError, error_id: str | None, component: str, reset_prefix: str,
              keys: tuple[str, ...], exc: BaseException) -> None:
    with st.container(border=True):
        st.error(literal(redact_text(err.user_message)), icon=":material/error:")
        st.caption(f"Error id: {literal(error_id or 'not recorded')} · code {literal(err.code)} · {literal(component)}")
        cols = st.columns([1, 1, 4])
        cols[0].button("Try again", key=f"_retry.{component}", icon=":material/refresh:",
                       on_click=_reset_keys, args=(reset_prefix, keys))
        if str(err.action) == "fix_settings":
            cols[1].page_link("app_pages/settings.py", label="Open Settings", icon=":material/settings:")
        if get_settings().is_development:
            with st.expander("Stack trace (development only)"):
                st.code(redact_traceback(err.stack_trace) if isinstance(exc, AppError) else _trace(exc),
                        language="text")


def _trace(exc: BaseException) -> str:
    """The traceback shown in development, redacted like an error-log row's."""
    return redact_traceback("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


@contextmanager
def section(name: str, *, keys: Iterable[str] = (), page: str | None = None) -> Iterator[None]:
    """Render a page section; if it raises, show a fallback in its place and keep the page going."""
    page_name = _slug(page) if page else current_page()
    component = f"ui.{page_name}.{_slug(name)}"
    holder = st.empty()
    try:
        with holder.container():
            yield
    except Exception as exc:  # noqa: BLE001 - the boundary's job: classify, record, show a fallback
        err, error_id = report_error(exc, component=component)
        holder.empty()
        with holder.container():
            _fallback(err, error_id, component, section_key(name, ""), tuple(keys), exc)


def callback(fn: Callable[..., Any]) -> Callable[..., None]:
    """A widget callback inside the page's boundary: a failure is recorded, then shown when the page reruns."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            session_actor()
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the boundary's job, for code that runs before the page does
            component = f"ui.{current_page()}.{_slug(fn.__name__)}"
            err, error_id = report_error(exc, component=component)
            st.session_state[_CALLBACK_FAILURE_KEY] = (err, error_id, component)

    return run


def _as_session_person(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # the fragment's id is made of the function's module and name: keep them
    def run(*args: Any, **kwargs: Any) -> Any:
        session_actor()
        return fn(*args, **kwargs)

    return run


def fragment(fn: Callable[..., Any] | None = None, *, run_every: float | None = None) -> Any:
    """`st.fragment` whose every run, the reruns on its own too, acts as the session's person."""
    def make(f: Callable[..., Any]) -> Any:
        return st.fragment(_as_session_person(f), run_every=run_every)

    return make(fn) if fn is not None else make


def dialog(title: str, *, width: Any = "small") -> Callable[[Callable[..., Any]], Any]:
    """`st.dialog` whose every run (a dialog reruns on its own, as a fragment) acts as the session's person."""
    def make(f: Callable[..., Any]) -> Any:
        return st.dialog(title, width=width)(_as_session_person(f))

    return make


def _callback_failure() -> None:
    """The failure of the callback that ran just before this rerun, once."""
    failed = st.session_state.pop(_CALLBACK_FAILURE_KEY, None)
    if failed is None:
        return
    err, error_id, component = failed
    st.error(f"That action failed. {literal(redact_text(err.user_message))}", icon=":material/error:")
    st.caption(f"Error id: {literal(error_id or 'not recorded')} · code {literal(err.code)} · {literal(component)}")
    if str(err.action) == "fix_settings":
        st.page_link("app_pages/settings.py", label="Open Settings", icon=":material/settings:")


@contextmanager
def app_boundary(page_title: str) -> Iterator[None]:
    """Around the whole page: nothing escapes as a raw traceback or a blank page."""
    set_current_page(page_title)
    try:
        _callback_failure()
        yield
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a page
        component = f"ui.{current_page()}"
        err, error_id = report_error(exc, component=component)
        st.error(f"This page could not be shown. {literal(redact_text(err.user_message))}", icon=":material/error:")
        st.caption(f"Error id: {literal(error_id or 'not recorded')} · code {literal(err.code)}")
        st.button("Reload the page", key="_retry.app", icon=":material/refresh:",
                  on_click=_reset_keys, args=(f"{current_page()}.", ()))
        if get_settings().is_development:
            with st.expander("Stack trace (development only)"):
                st.code(_trace(exc), language="text")
