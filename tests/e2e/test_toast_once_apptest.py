"""One toast per error: a critical error the page already toasted is not toasted again by the sidebar."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.store import get_engine, migrate

SCRIPT = """
import streamlit as st
from core.errors import UIError
from core.ui.shell import _critical_toasts
from core.ui.toasts import notify_exception

_critical_toasts()
if st.button("Break"):
    notify_exception(UIError("the page broke", severity="critical", user_message="The page broke."),
                     component="demo")
    from core.errorlog import flush
    flush(30)
"""


def _toasts_of(at: AppTest, text: str) -> int:
    return sum(text in t.value for t in at.toast)


def test_a_critical_error_toasted_by_the_page_is_not_toasted_again_by_the_sidebar():
    """The page's toast is the one toast: the next runs' critical-error check skips that error."""
    migrate(get_engine())
    at = AppTest.from_string(SCRIPT).run(timeout=30)
    at.button[0].click().run(timeout=30)
    assert _toasts_of(at, "The page broke") == 1  # the page's own toast
    for _ in range(2):
        at.run(timeout=30)
        assert not at.exception
        assert _toasts_of(at, "The page broke") == 0  # the sidebar finds it, and knows it was shown


def test_a_critical_error_from_elsewhere_is_toasted_once():
    """A critical error this session did not show (a worker's) gets one sidebar toast, then none."""
    from core.errorlog import flush, record
    from core.errors import UIError

    migrate(get_engine())
    at = AppTest.from_string(SCRIPT).run(timeout=30)
    record(UIError("worker broke", severity="critical", user_message="The worker broke."), component="worker")
    flush(30)
    at.run(timeout=30)
    assert _toasts_of(at, "The worker broke") == 1
    at.run(timeout=30)
    assert _toasts_of(at, "The worker broke") == 0
