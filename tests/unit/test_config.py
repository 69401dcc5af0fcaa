"""Settings: environment first, then secrets.toml, then defaults; a bad value names its setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.config import ROOT, SettingsError, load_settings


def test_environment_wins_over_secrets_file_and_defaults(tmp_path, monkeypatch):
    """A value in the environment beats the same key in secrets.toml, which beats the default."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('STUDIO_RETRY_MAX_ATTEMPTS = "7"\nSTUDIO_BREAKER_COOLDOWN_S = 12\n')
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    settings = load_settings({"STUDIO_RETRY_MAX_ATTEMPTS": "9"})
    assert settings.retry_max_attempts == 9
    assert settings.breaker_cooldown_s == 12.0
    assert settings.autosave_interval_s == 5.0


@pytest.mark.parametrize(("env", "named"), [
    ({"STUDIO_RETRY_MAX_ATTEMPTS": "three"}, "STUDIO_RETRY_MAX_ATTEMPTS"),
    ({"STUDIO_RETRY_MAX_ATTEMPTS": "0"}, "STUDIO_RETRY_MAX_ATTEMPTS"),
    ({"STUDIO_LOG_SAMPLE_RATE_DEBUG": "1.5"}, "STUDIO_LOG_SAMPLE_RATE_DEBUG"),
    ({"ENVIRONMENT": "prod"}, "ENVIRONMENT"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"STUDIO_RETRY_INSTANT": "maybe"}, "STUDIO_RETRY_INSTANT"),
])
def test_an_invalid_value_fails_naming_the_setting(env, named):
    """Each bad value raises SettingsError whose message names the variable to fix."""
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_the_cli_refuses_to_start_on_a_bad_setting_with_exit_2(tmp_path):
    """python -m core with a bad setting exits 2 and says which setting is wrong."""
    env = {"PATH": "/usr/bin:/bin", "STUDIO_DATA_DIR": str(tmp_path), "STUDIO_BREAKER_WINDOW_S": "-1",
           "STUDIO_SECRETS_FILE": str(tmp_path / "none.toml")}
    done = subprocess.run([sys.executable, "-m", "core", "db", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "STUDIO_BREAKER_WINDOW_S" in done.stderr
