"""Settings saved from the UI: validated, stored, applied at once, secrets never stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import settings_store
from core.auth import current_actor
from core.config import SettingsError, get_settings, reload_settings
from core.store.schema import app_settings


def test_saved_setting_is_applied_and_stored(engine):
    """A saved value is in force at once and kept in app_settings."""
    settings_store.save(engine, {"retry_max_attempts": 7})
    assert get_settings().retry_max_attempts == 7
    with engine.connect() as conn:
        row = conn.execute(select(app_settings).where(app_settings.c.key == "retry_max_attempts")).one()
    assert row.value == "7" and row.updated_by == current_actor(engine).user_id


def test_invalid_value_names_the_field_and_stores_nothing(engine):
    """A bad value raises SettingsError naming its variable, and nothing is written."""
    with pytest.raises(SettingsError, match="STUDIO_BREAKER_COOLDOWN_S"):
        settings_store.save(engine, {"breaker_cooldown_s": -1})
    assert settings_store.load(engine) == {}


def test_secrets_are_refused(engine):
    """The API key and database URL can never be stored in the table."""
    with pytest.raises(SettingsError, match="ANTHROPIC_API_KEY"):
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


HOOK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def test_the_environment_wins_over_a_saved_webhook_url(engine, monkeypatch):
    """With STUDIO_ALERT_WEBHOOK_URL set, a saved webhook is ignored at start and a new one cannot be saved."""
    settings_store.save(engine, {"alert_webhook_url": "https://ui.example.com/hook"})
    monkeypatch.setenv("STUDIO_ALERT_WEBHOOK_URL", HOOK)
    reload_settings()
    settings, _skipped = settings_store.apply_persisted(engine)
    assert settings.alert_webhook_url == HOOK
    assert "alert_webhook_url" not in settings_store.load(engine)
    with pytest.raises(SettingsError, match="set by the operator"):
        settings_store.save(engine, {"alert_webhook_url": "https://attacker.example.com/x"})
    assert get_settings().alert_webhook_url == HOOK
    assert settings_store.refusal("alert_webhook_url") is not None
    assert settings_store.refusal("retry_max_attempts") is None


def test_the_secrets_file_also_makes_the_webhook_the_operators(engine, monkeypatch, tmp_path):
    """STUDIO_ALERT_WEBHOOK_URL in secrets.toml locks the setting just like the environment."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'STUDIO_ALERT_WEBHOOK_URL = "{HOOK}"\n')
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    reload_settings()
    with pytest.raises(SettingsError, match="set by the operator"):
        settings_store.save(engine, {"alert_webhook_url": "https://other.example.com/x"})


def test_a_saved_number_still_wins_over_the_environment(engine, monkeypatch):
    """Tunable numbers keep their precedence: a value saved on the Settings page beats the environment."""
    monkeypatch.setenv("STUDIO_RETRY_MAX_ATTEMPTS", "5")
    reload_settings()
    settings_store.save(engine, {"retry_max_attempts": 7})
    reload_settings()
    assert settings_store.apply_persisted(engine)[0].retry_max_attempts == 7


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "ftp://example.com/x", "example.com",
                                 "https://", "https://[::1/x"])
def test_only_an_http_or_https_webhook_url_is_accepted(engine, url):
    """A webhook URL that is not http(s) with a host is refused naming the setting, and its value is not echoed."""
    with pytest.raises(SettingsError, match="STUDIO_ALERT_WEBHOOK_URL") as refused:
        settings_store.save(engine, {"alert_webhook_url": url})
    assert "(hidden)" in str(refused.value) and "passwd" not in str(refused.value)
    assert settings_store.load(engine) == {}


def test_a_webhook_url_is_shown_as_its_scheme_and_host_only():
    """masked() keeps the scheme and host of an operator setting and hides the path and query that hold the token."""
    assert settings_store.masked("alert_webhook_url", HOOK) == "https://hooks.slack.com/…"
    assert settings_store.masked("alert_webhook_url", "") == "(not set)"
    assert settings_store.masked("retry_max_attempts", 4) == "4"


def test_one_value_above_its_bound_stores_none_of_the_changes(engine):
    """A valid retry count saved with a cool-down over an hour: SettingsError names the cool-down, nothing is kept."""
    with pytest.raises(SettingsError, match="STUDIO_BREAKER_COOLDOWN_S = 7200 is invalid"):
        settings_store.save(engine, {"retry_max_attempts": 6, "breaker_cooldown_s": 7200})
    assert settings_store.load(engine) == {} and get_settings().retry_max_attempts == 4
