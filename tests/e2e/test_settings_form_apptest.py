"""The Settings form's guardrails: bounds and defaults from the model, refusals beside the field, nothing half-saved."""

from __future__ import annotations

from e2e_data import shown
from streamlit.testing.v1 import AppTest

from core import settings_store
from core.config import get_settings


def _click(at: AppTest, label: str) -> None:
    at.button[[b.label for b in at.button].index(label)].click().run()


def _errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def test_1e6_in_a_whole_number_field_is_refused_not_read_as_1(open_page, engine):
    """Typing 1e6 into Attempts per model call is refused beside the field; the setting stays 4, nothing is stored."""
    at = open_page("settings")
    at.text_input(key="settings.retry_max_attempts").input("1e6")
    _click(at, "Save and apply")
    assert not at.exception
    assert _errors(at) == ["Attempts per model call must be a whole number from 1 to 20."]
    assert get_settings().retry_max_attempts == 4 and settings_store.load(engine) == {}


def test_a_value_above_the_upper_bound_is_refused_naming_the_field_not_the_variable(open_page, engine):
    """300 parallel calls is refused in words with the field's label; the message has no environment variable."""
    at = open_page("settings")
    at.text_input(key="settings.worker_concurrency").input("300")
    _click(at, "Save and apply")
    assert _errors(at) == ["Parallel calls per worker must be a whole number from 1 to 256."]
    assert "STUDIO_" not in " ".join(_errors(at))
    assert get_settings().worker_concurrency == 4


def test_a_form_with_one_bad_field_saves_nothing(open_page, engine):
    """A valid retry count beside an out-of-range timeout: only the timeout is named, and neither is saved."""
    at = open_page("settings")
    at.text_input(key="settings.retry_max_attempts").input("6")
    at.text_input(key="settings.request_timeout_s").input("7200")
    _click(at, "Save and apply")
    assert _errors(at) == ["Longest wait for a model reply (s) must be a number above 0, at most 3,600."]
    assert (get_settings().retry_max_attempts, get_settings().request_timeout_s) == (4, 120.0)
    assert settings_store.load(engine) == {}


def test_each_field_shows_its_default_beside_it(open_page):
    """Under every field the form says its declared default, as a person would type it (30, not 30.0)."""
    at = open_page("settings")
    captions = [shown(c.value) for c in at.caption]
    assert "Default: 30" in captions and "Default: 4" in captions and "Default: 40000" in captions
    assert "Default: claude-sonnet-5-5" in captions


def test_reset_fills_in_the_default_and_save_applies_it(open_page, engine):
    """A field's Reset puts its default back in the field without saving; Save and apply then restores it."""
    settings_store.save(engine, {"retry_max_attempts": 9})
    at = open_page("settings")
    assert at.text_input(key="settings.retry_max_attempts").value == "9"
    at.button(key="settings.retry_max_attempts_reset").click().run()
    assert not at.exception
    assert at.text_input(key="settings.retry_max_attempts").value == "4"
    assert get_settings().retry_max_attempts == 9  # filled in, not yet saved
    _click(at, "Save and apply")
    assert not at.error and get_settings().retry_max_attempts == 4


def test_reset_all_fills_every_field_with_its_default(open_page, engine):
    """Reset all to defaults fills every field, says so, and one save puts every default back in force."""
    settings_store.save(engine, {"retry_max_attempts": 9, "breaker_cooldown_s": 5, "default_model": "claude-haiku-4-5"})
    at = open_page("settings")
    _click(at, "Reset all to defaults")
    assert not at.exception
    assert at.text_input(key="settings.breaker_cooldown_s").value == "30"
    assert at.selectbox(key="settings.default_model").value == "claude-sonnet-5-5"
    assert any("Save and apply to use them" in shown(i.value) for i in at.info)
    _click(at, "Save and apply")
    s = get_settings()
    assert not at.error and (s.retry_max_attempts, s.breaker_cooldown_s, s.default_model) == (
        4, 30.0, "claude-sonnet-5-5")
