"""Toasts tell apart temporary, actionable and permanent errors."""

from __future__ import annotations

from core.errors import APIError, DatabaseError, UIError, ValidationError, classify
from core.ui.toasts import error_kind


def test_a_retried_error_is_temporary():
    """An overloaded model service is being retried: temporary."""
    assert error_kind(APIError("529", code="overloaded")) == "temporary"


def test_an_error_the_user_can_fix_is_actionable():
    """A rejected key (fix settings) and bad input (fix input) are actionable."""
    rejected = APIError("401", code="authentication_failed", recoverable=False, action="fix_settings")
    assert error_kind(rejected) == "actionable"
    assert error_kind(ValidationError("bad count", field="count")) == "actionable"


def test_an_unknown_failure_is_permanent():
    """An internal error and a constraint violation are permanent."""
    assert error_kind(classify(KeyError("x"))) == "permanent"
    assert error_kind(DatabaseError("dup", code="duplicate_key", recoverable=False, action="contact_support")) == \
        "permanent"
    assert error_kind(UIError("boom")) == "permanent"
