"""Settings saved from the UI: validated, stored, applied at once, secrets never stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import settings_store
from core.config import SettingsError, get_settings, reload_settings
from core.store.schema import app_settings


def test_saved_setting_is_applied_and_stored(engine):
    """A saved value is in force at once and kept in app_settings."""
    settings_store.save(engine, {"retry_max_attempts": 7}, user="ana")
    assert get_settings().retry_max_attempts == 7
    with engine.connect() as conn:
        row = conn.execute(select(app_settings).where(app_settings.c.key == "retry_max_attempts")).one()
    assert row.value == "7" and row.updated_by == "ana"


def test_invalid_value_names_the_field_and_stores_nothing(engine):
    """A bad value raises SettingsError naming its variable, and nothing is written."""
    with pytest.raises(SettingsError, match="STUDIO_BREAKER_COOLDOWN_S"):
        settings_store.save(engine, {"breaker_cooldown_s": -1})
    assert settings_store.load(engine) == {}


def test_secrets_are_refused(engine):
    """The API key and database URL can never be stored in the table."""
    with pytest.raises(SettingsError, match="anthropic_api_key"):
        settings_store.save(engine, {"anthropic_api_key": "sk-ant-secret"})
    with engine.connect() as conn:
        assert conn.execute(select(app_settings)).all() == []


def test_persisted_settings_are_loaded_on_start(engine):
    """After a restart (settings reloaded from the environment) the stored values come back."""
    settings_store.save(engine, {"autosave_interval_s": 2.5, "default_model": "claude-haiku-4-5"})
    reload_settings()
    assert get_settings().autosave_interval_s == 5.0
    settings, skipped = settings_store.apply_persisted(engine)
    assert (settings.autosave_interval_s, settings.default_model, skipped) == (2.5, "claude-haiku-4-5", [])


def test_a_stored_value_that_became_invalid_is_skipped(engine):
    """A row that no longer validates is skipped and named, the others still apply."""
    with engine.begin() as conn:
        conn.execute(app_settings.insert(), [{"key": "rate_limit_rpm", "value": "0"},
                                             {"key": "worker_concurrency", "value": "3"}])
    settings, skipped = settings_store.apply_persisted(engine)
    assert settings.worker_concurrency == 3
    assert len(skipped) == 1 and skipped[0].startswith("rate_limit_rpm")
