"""Toasts that tell apart three kinds of error: temporary, permanent and actionable.

- temporary: recoverable, being retried (hourglass, short);
- actionable: the user can fix it (settings or input) — the toast links to the fix;
- permanent: not recoverable and nothing to fix here (recorded, with its id).
"""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from core.errors import AppError, classify
from core.redact import redact_text
from core.ui.boundaries import report_error
from core.ui.safe import literal

__all__ = ["Kind", "error_kind", "notify", "notify_exception", "success"]

Kind = Literal["temporary", "permanent", "actionable"]

# page url paths (st.navigation derives them from the file names in app_pages/)
_FIX_PAGES = {"fix_settings": ("settings", "Settings"), "fix_input": ("", "")}


def error_kind(err: AppError) -> Kind:
    """Which of the three kinds an error is."""
    if str(err.action) in ("fix_settings", "fix_input"):
        return "actionable"
    if err.is_recoverable:
        return "temporary"
    return "permanent"


def notify(err: AppError, error_id: str | None = None) -> Kind:
    """Show one toast for `err`, worded by its kind; returns the kind."""
    kind = error_kind(err)
    ref = f" (error id {literal(error_id)})" if error_id else ""
    # an upstream message can carry a key: redacted, then escaped
    message = literal(redact_text(err.user_message))
    if kind == "temporary":
        st.toast(f"{message}{ref}", icon=":material/hourglass_top:")
    elif kind == "actionable":
        path, label = _FIX_PAGES.get(str(err.action), ("", ""))
        link = f" [Open {label}](/{path})" if path else " Correct the highlighted field."
        st.toast(f"{message}{link}{ref}", icon=":material/build:", duration="long")
    else:
        st.toast(f"{message}{ref}", icon=":material/error:", duration="long")
    return kind


def notify_exception(exc: BaseException, *, component: str, context: dict[str, Any] | None = None) -> AppError:
    """Record an exception caught by a page (with user and session), toast it, return it classified."""
    err, error_id = report_error(classify(exc), component=component, context=context)
    notify(err, error_id)
    return err


def success(message: str) -> None:
    """A success toast; `message` is Markdown, so callers pass untrusted parts through literal().

    The whole message passes the redactor too; a value escaped by literal() before it was
    redacted may hide its shape, so callers redact such values first.
    """
    st.toast(redact_text(message), icon=":material/check_circle:")
