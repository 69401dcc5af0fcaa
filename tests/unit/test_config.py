"""Settings: environment first, then secrets.toml, then defaults; a bad value names its setting."""

from __future__ import annotations

import pytest
from cli_runner import run_cli

from core.config import SettingsError, load_settings


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


@pytest.mark.parametrize(("name", "value", "says"), [
    ("STUDIO_BREAKER_WINDOW_S", "-1", "STUDIO_BREAKER_WINDOW_S"),
    ("STUDIO_WORKER_CONCURRENCY", "300", "STUDIO_WORKER_CONCURRENCY = '300' is invalid: it must be a whole number "
                                         "from 1 to 256"),
])
def test_the_cli_refuses_to_start_on_a_bad_setting_with_exit_2(name, value, says):
    """python -m core with a value under its lower or over its upper bound exits 2 and says which setting is wrong."""
    done = run_cli(["db", "migrate"], {name: value})
    assert done.returncode == 2
    assert says in done.stderr


@pytest.mark.parametrize(("env", "named"), [
    ({"STUDIO_LEASE_DURATION_S": "inf"}, "STUDIO_LEASE_DURATION_S"),
    ({"STUDIO_LEASE_DURATION_S": "NaN"}, "STUDIO_LEASE_DURATION_S"),
    ({"STUDIO_RETRY_BACKOFF_CAP_S": "inf"}, "STUDIO_RETRY_BACKOFF_CAP_S"),
    ({"STUDIO_LEASE_DURATION_S": "10", "STUDIO_HEARTBEAT_INTERVAL_S": "10"}, "STUDIO_HEARTBEAT_INTERVAL_S"),
    ({"STUDIO_USER": ""}, "STUDIO_USER"),
    ({"STUDIO_USER": "   "}, "STUDIO_USER"),
    ({"STUDIO_WORKER_CONCURRENCY": "1000000"}, "STUDIO_WORKER_CONCURRENCY"),
    ({"ANTHROPIC_API_KEY": "sk-ant-api03-abc\n"}, "ANTHROPIC_API_KEY"),
    ({"ANTHROPIC_API_KEY": "sk-ant-api03 abc"}, "ANTHROPIC_API_KEY"),
    ({"STUDIO_ALERT_WEBHOOK_URL": "file:///etc/passwd"}, "STUDIO_ALERT_WEBHOOK_URL"),
    ({"STUDIO_ALERT_WEBHOOK_URL": "hooks.example.com/x"}, "STUDIO_ALERT_WEBHOOK_URL"),
    ({"STUDIO_ALERT_WEBHOOK_URL": "https://"}, "STUDIO_ALERT_WEBHOOK_URL"),
])
def test_infinite_contradictory_empty_or_malformed_values_are_refused_at_start(env, named):
    """inf, NaN, a heartbeat not shorter than the lease, an empty user, a key with a newline and a non-http webhook fail."""
    with pytest.raises(SettingsError, match=named) as exc:
        load_settings(env)
    assert "sk-ant-api03" not in str(exc.value) and "passwd" not in str(exc.value)


def test_a_sqlite_url_in_a_folder_that_does_not_exist_is_refused_and_not_created(tmp_path):
    """DATABASE_URL naming a file in a missing folder is refused; the folder is not created."""
    url = f"sqlite:///{tmp_path / 'missing' / 'studio.db'}"
    with pytest.raises(SettingsError, match="folder that does not exist"):
        load_settings({"DATABASE_URL": url})
    assert not (tmp_path / "missing").exists()
    assert load_settings({"DATABASE_URL": f"sqlite:///{tmp_path / 'studio.db'}"}).database_url.endswith("studio.db")


def test_studio_user_names_the_local_user_from_the_environment_or_secrets_file(tmp_path, monkeypatch):
    """STUDIO_USER sets the user in the environment and, as the example file says, in secrets.toml."""
    assert load_settings({"STUDIO_USER": "dana"}).user_name == "dana"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('STUDIO_USER = "lee"\n')
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    assert load_settings({}).user_name == "lee"


@pytest.mark.parametrize(("env", "named"), [
    ({"STUDIO_DB_RETRY_BACKOFF_BASE_S": "3", "STUDIO_DB_RETRY_BACKOFF_CAP_S": "2"}, "STUDIO_DB_RETRY_BACKOFF_CAP_S"),
    ({"STUDIO_GENERATION_DEFAULT_TURNS": "7"}, "STUDIO_GENERATION_DEFAULT_TURNS"),
    ({"STUDIO_GENERATION_DEFAULT_TURNS": "42"}, "STUDIO_GENERATION_DEFAULT_TURNS"),
    ({"STUDIO_RATE_LIMIT_REFUND_STATUSES": "429, many"}, "STUDIO_RATE_LIMIT_REFUND_STATUSES"),
])
def test_pairs_that_contradict_each_other_and_malformed_lists_are_refused(env, named):
    """A database backoff cap under its base, an odd or out-of-range default of turns and a bad status list fail."""
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_a_refusal_says_what_the_setting_allows_in_words():
    """The message quotes the bound declared on the field, not a validator's jargon."""
    with pytest.raises(SettingsError) as exc:
        load_settings({"STUDIO_LOG_SAMPLE_RATE_DEBUG": "1.5"})
    assert str(exc.value) == "Setting STUDIO_LOG_SAMPLE_RATE_DEBUG = '1.5' is invalid: it must be a fraction from 0 to 1."


def test_text_from_the_environment_reads_as_the_field_type():
    """Flags read yes/no (empty: off), whole numbers may have underscores, a status list is comma-separated."""
    settings = load_settings({"STUDIO_RETRY_INSTANT": "", "STUDIO_UI_BACKGROUND_WORKER": "no",
                              "STUDIO_LOG_QUEUE_MAX": "1_000", "STUDIO_RATE_LIMIT_REFUND_STATUSES": "429, 503"})
    assert (settings.retry_instant, settings.ui_background_worker) == (False, False)
    assert (settings.log_queue_max, settings.rate_limit_refund_statuses) == (1000, (429, 503))


@pytest.mark.parametrize("name", ["STUDIO_RATE_LIMIT_DEFAULT_PAUSE_S", "STUDIO_RATE_LIMIT_UNCHARGED_STATUSES"])
def test_a_removed_setting_still_set_is_refused_naming_it(name, tmp_path, monkeypatch):
    """A setting that no longer exists, in the environment or secrets.toml, fails at start instead of being ignored."""
    with pytest.raises(SettingsError, match=f"{name} no longer exists"):
        load_settings({name: "5"})
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'{name} = "5"\n')
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    with pytest.raises(SettingsError, match=name):
        load_settings({})
    secrets.unlink()  # the fixture reloads the settings after the test


def test_the_help_still_prints_when_a_setting_is_bad(monkeypatch, capsys):
    """python -m core --help with a bad setting prints the help (exit 0) and names the bad setting on stderr."""
    from core.__main__ import main

    monkeypatch.setenv("STUDIO_BREAKER_WINDOW_S", "-1")
    monkeypatch.setattr("core.config._current", None)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out, err = capsys.readouterr()
    assert done.value.code == 0 and "usage: python -m core" in out and "STUDIO_BREAKER_WINDOW_S" in err
    assert main(["batch", "list"]) == 2
    monkeypatch.delenv("STUDIO_BREAKER_WINDOW_S")  # the fixture reloads the settings after the test


def test_every_setting_has_a_label_and_a_rule_in_words():
    """The Settings page reads each field's label and allowed values from the model; none is left blank."""
    from core.config import Settings

    for name in Settings.model_fields:
        assert Settings.model_fields[name].title, name
        assert Settings.allowed(name), name
    assert Settings.allowed("cleanup_interval_s") == "a number from 0 to 604,800 (0: off)"
    assert Settings.allowed("environment") == "one of development, staging, production, test"


def test_the_token_estimate_reads_the_characters_per_token_setting():
    """estimated_tokens divides by estimate_chars_per_token, rounding up; changing it changes the estimate."""
    settings = load_settings({})
    assert settings.estimated_tokens("x" * 35) == 10
    assert settings.replace(estimate_chars_per_token=5).estimated_tokens("x" * 35) == 7


def test_every_number_setting_has_a_lower_and_an_upper_bound():
    """Each int or float field declares both bounds, so the form and the environment refuse the same extremes."""
    import annotated_types

    from core.config import Settings

    for name, info in Settings.model_fields.items():
        if info.annotation not in (int, float):
            continue
        kinds = {type(bound) for bound in info.metadata}
        assert kinds & {annotated_types.Ge, annotated_types.Gt}, name
        assert annotated_types.Le in kinds, name


@pytest.mark.parametrize(("env", "says"), [
    ({"STUDIO_RETRY_MAX_ATTEMPTS": "21"}, "STUDIO_RETRY_MAX_ATTEMPTS = '21' is invalid: it must be a whole number "
                                          "from 1 to 20."),
    ({"STUDIO_MAX_CONCURRENCY": "257"}, "STUDIO_MAX_CONCURRENCY = '257' is invalid: it must be a whole number "
                                        "from 1 to 256."),
    ({"STUDIO_REQUEST_TIMEOUT_S": "3601"}, "STUDIO_REQUEST_TIMEOUT_S = '3601' is invalid: it must be a number "
                                           "above 0, at most 3,600."),
    ({"STUDIO_RATE_LIMIT_RPM": "1e6"}, "STUDIO_RATE_LIMIT_RPM = '1e6' is invalid: it must be a whole number "
                                       "from 1 to 1,000,000."),
])
def test_a_value_above_its_upper_bound_is_refused_at_start_naming_the_variable(env, says):
    """Too many retries, too much concurrency, an hour-plus timeout and 1e6 for a whole number fail at start."""
    with pytest.raises(SettingsError) as exc:
        load_settings(env)
    assert str(exc.value) == f"Setting {says}"


def test_the_upper_bounds_hold_for_secrets_toml_too(tmp_path, monkeypatch):
    """secrets.toml with 21 retries fails at start naming the variable, like the environment."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("STUDIO_RETRY_MAX_ATTEMPTS = 21\n")
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    with pytest.raises(SettingsError, match="STUDIO_RETRY_MAX_ATTEMPTS = 21 is invalid: it must be a whole number "
                                            "from 1 to 20"):
        load_settings({})
    secrets.unlink()  # the fixture reloads the settings after the test


def test_a_form_reads_refusals_by_label_and_rules_by_the_field_to_change():
    """refusals() names a field by its label, and a broken rule by the setting to change, in plain words."""
    from core.config import Settings

    base = dict(load_settings({}))
    assert Settings.refusals({**base, "retry_max_attempts": "1e6"}) == [
        (("retry_max_attempts",), "Attempts per model call must be a whole number from 1 to 20.")]
    [rule] = Settings.refusals({**base, "retry_backoff_base_s": "40"})
    assert rule == (("retry_backoff_cap_s", "retry_backoff_base_s"),
                    "Longest retry wait (s) must be >= Wait before the first retry (s).")
    assert Settings.refusals(base) == []
