"""Toasts, the session's error panel and development stack traces show redacted text."""

from __future__ import annotations

from redaction_cases import ANTHROPIC_KEY
from streamlit.testing.v1 import AppTest

from core.markdown_text import escape
from core.redact import REDACTED
from core.ui.safe import literal

TOAST_SCRIPT = f"""
from core.errors import APIError
from core.ui.toasts import notify, success

notify(APIError("529", code="overloaded", user_message="Retrying with key {ANTHROPIC_KEY} shortly."))
success("Saved; the webhook https://hooks.slack.com/services/T01/B02/SeCrEtPaTh42 was told.")
"""

BOUNDARY_SCRIPT = f"""
from core.ui.boundaries import section, set_current_page

set_current_page("demo")
with section("broken"):
    raise ConnectionError("refused postgresql://svc:Sup3rS3cret@db/app with {ANTHROPIC_KEY}")
"""


def test_toasts_show_the_message_redacted():
    """An error toast and a success toast lose the key and the webhook path they carry."""
    at = AppTest.from_string(TOAST_SCRIPT).run(timeout=30)
    assert not at.exception
    shown = [t.value for t in at.toast]
    assert len(shown) == 2
    # toasts are Markdown with untrusted parts escaped: look for the key in both forms
    for secret in (ANTHROPIC_KEY, escape(ANTHROPIC_KEY), "SeCrEtPaTh42"):
        assert all(secret not in text for text in shown)
    assert literal(f"Retrying with key {REDACTED} shortly.") in shown[0]


def test_a_development_stack_trace_is_shown_redacted(monkeypatch):
    """With ENVIRONMENT=development the boundary's stack trace is shown, without the secrets of the failure."""
    monkeypatch.setenv("ENVIRONMENT", "development")
    from core.config import reload_settings

    reload_settings()
    at = AppTest.from_string(BOUNDARY_SCRIPT).run(timeout=30)
    assert not at.exception
    traces = [c.value for c in at.code]
    assert traces and "Traceback" in traces[0] and "ConnectionError" in traces[0]
    assert "Sup3rS3cret" not in traces[0] and ANTHROPIC_KEY not in traces[0]
    assert f"svc:{REDACTED}@db" in traces[0]
