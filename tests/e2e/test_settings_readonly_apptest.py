"""The Settings page for a person who is not an admin: every value shown, nothing changeable, one sentence why."""

from __future__ import annotations

from e2e_data import shown
from people import person

from core import settings_store
from core.auth.local import forget_local_user
from core.config import get_settings, reload_settings


def test_an_analyst_sees_the_settings_read_only_with_one_sentence_why(open_page, engine, monkeypatch):
    """Analyst B's form shows the values in force; its fields and buttons are disabled (the save itself is refused too)."""
    person(engine, "b@example.com")
    monkeypatch.setenv("STUDIO_USER", "b@example.com")  # local mode: the page runs as the user it names
    reload_settings()
    forget_local_user()
    at = open_page("settings")
    assert not at.exception
    assert [shown(i.value) for i in at.info] == [settings_store.ADMINS_ONLY]
    field = at.text_input(key="settings.retry_max_attempts")
    assert field.value == "4" and field.disabled
    buttons = {b.label: b for b in at.button}
    assert buttons["Save and apply"].disabled and buttons["Reset all to defaults"].disabled
    assert buttons["Apply to the sandbox"].disabled
    assert get_settings().retry_max_attempts == 4
    assert settings_store.ADMINS_ONLY not in " ".join(shown(c.value) for c in at.caption)  # said once, not per field
