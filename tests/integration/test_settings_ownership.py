"""Only an admin changes settings: stored under their id, each change audited old -> new in the same transaction."""

from __future__ import annotations

from typing import Any

import pytest
from people import person
from sqlalchemy import select

from core import settings_store
from core.auth import ANONYMOUS, Role, acting_as
from core.auth.audit import AuditAction
from core.config import SettingsError, get_settings, reload_settings
from core.store.schema import app_settings, audit_events

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def _changes(engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_events).where(
            audit_events.c.action == AuditAction.SETTINGS_CHANGE.value).order_by(audit_events.c.id)).mappings())


def _stored(engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.key: (r.value, r.updated_by) for r in conn.execute(select(app_settings))}


@pytest.mark.parametrize("role", [Role.ANALYST, Role.REVIEWER])
def test_a_person_who_is_not_an_admin_cannot_save_or_reset_settings(engine, role):
    """The save is refused in one plain sentence before anything is stored, applied or audited; so is a reset."""
    someone = person(engine, "b@example.com", role)
    with acting_as(someone):
        assert settings_store.refusal("retry_max_attempts") == settings_store.ADMINS_ONLY
        with pytest.raises(SettingsError, match="^Only an admin can change settings"):
            settings_store.save(engine, {"retry_max_attempts": 7})
        with pytest.raises(SettingsError, match="^Only an admin can change settings"):
            settings_store.reset(engine)
    assert _stored(engine) == {} and get_settings().retry_max_attempts == 4 and _changes(engine) == []


def test_an_admins_change_is_stored_under_their_id_and_audited_old_to_new(engine):
    """Two settings saved: both rows carry the admin's id; one audit row each, with the value before and after."""
    boss = person(engine, "boss@example.com", Role.ADMIN)
    before = get_settings().breaker_cooldown_s
    with acting_as(boss):
        settings_store.save(engine, {"retry_max_attempts": 7, "breaker_cooldown_s": 45})
    assert _stored(engine) == {"retry_max_attempts": ("7", boss.user_id), "breaker_cooldown_s": ("45.0", boss.user_id)}
    rows = {r["target_id"]: r for r in _changes(engine)}
    assert set(rows) == {"retry_max_attempts", "breaker_cooldown_s"} and len(_changes(engine)) == 2
    assert rows["retry_max_attempts"]["detail"] == {"old": 4, "new": 7}
    assert rows["breaker_cooldown_s"]["detail"] == {"old": before, "new": 45.0}
    assert {r["actor_id"] for r in rows.values()} == {boss.user_id}


def test_a_webhook_url_is_audited_masked(engine):
    """The audit row of a webhook change keeps its scheme and host, never the token in its path."""
    boss = person(engine, "boss@example.com", Role.ADMIN)
    with acting_as(boss):
        settings_store.save(engine, {"alert_webhook_url": HOOK})
    [row] = _changes(engine)
    assert row["detail"] == {"old": "(not set)", "new": "https://hooks.slack.com/…"}
    assert "secret" not in str(row["detail"])


def test_a_save_that_fails_after_its_write_stores_applies_and_audits_nothing(engine, monkeypatch):
    """The audit row is in the save's transaction: a failure after it rolls back the stored value too."""
    boss = person(engine, "boss@example.com", Role.ADMIN)
    real = settings_store.audit

    def audit_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("lost the connection after the audit row")

    monkeypatch.setattr(settings_store, "audit", audit_then_fail)
    with acting_as(boss), pytest.raises(RuntimeError):
        settings_store.save(engine, {"retry_max_attempts": 7})
    assert _stored(engine) == {} and _changes(engine) == [] and get_settings().retry_max_attempts == 4


def test_an_admins_reset_is_audited_per_setting(engine):
    """Forgetting the stored values writes one audit row for each, naming the value that was stored."""
    boss = person(engine, "boss@example.com", Role.ADMIN)
    with acting_as(boss):
        settings_store.save(engine, {"retry_max_attempts": 7})
        assert settings_store.reset(engine) == 1
    assert _stored(engine) == {}
    assert [(r["target_id"], r["detail"]["old"]) for r in _changes(engine)] == [
        ("retry_max_attempts", 4), ("retry_max_attempts", 7)]


def test_saved_settings_apply_at_start_whoever_starts_the_process(engine):
    """A process started by a signed-out visitor's page still applies the saved values (read as the system)."""
    boss = person(engine, "boss@example.com", Role.ADMIN)
    with acting_as(boss):
        settings_store.save(engine, {"retry_max_attempts": 7})
    reload_settings()
    with acting_as(ANONYMOUS):
        settings, skipped = settings_store.apply_persisted(engine)
    assert (settings.retry_max_attempts, skipped) == (7, [])
