"""Settings changed in the UI: saved to the `app_settings` table, applied without a restart.

Only tunable numbers and names are stored. Secrets (the API key) and where things live
(database URL, data dir, endpoint, environment) never go into the table: they come from
the environment or secrets.toml only, so a row can never leak or override them.

Settings that carry a secret or send data out (config.OPERATOR_FIELDS, e.g. the alert webhook
URL) belong to the operator: where the environment or secrets.toml sets one, a saved value is
ignored and the UI cannot save another. For every other setting a saved value wins.
`refusal(name, actor)` is the one place that answers "may this person change this setting here":
only an admin changes settings (core.auth.permissions); everyone sees them. A saved row carries
the admin's id, and each change writes one audit row (old -> new, an operator setting's values
masked) in the transaction that stores it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select

from core.auth.actor import Actor, current_actor, system_actor
from core.auth.audit import AuditAction, audit
from core.auth.permissions import Action, Kind, may
from core.config import (
    OPERATOR_FIELDS,
    Settings,
    SettingsError,
    env_name,
    get_settings,
    override_settings,
    set_outside_the_app,
)
from core.store.schema import app_settings, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["ADMINS_ONLY", "NOT_STORED", "STORABLE", "apply_persisted", "load", "masked", "may_change", "refusal",
           "reset", "save"]

NOT_STORED = frozenset({
    "anthropic_api_key", "anthropic_base_url", "database_url", "data_dir", "environment", "retry_instant",
})
STORABLE = frozenset(Settings.model_fields) - NOT_STORED
ADMINS_ONLY = "Only an admin can change settings; you can see them here."


def _operator_set() -> frozenset[str]:
    return OPERATOR_FIELDS & set_outside_the_app()


def may_change(actor: Actor | None = None) -> bool:
    """Whether `actor` (default: the running code's) may change settings at all: admins only."""
    return may(actor or current_actor(), Action.CHANGE, Kind.SETTINGS)


def refusal(name: str, actor: Actor | None = None) -> str | None:
    """Why `actor` (default: the running code's) may not change setting `name` here, or None if they may."""
    if not may_change(actor):
        return ADMINS_ONLY
    if name not in STORABLE:
        return f"Setting {env_name(name)} cannot be changed here; set it in the environment."
    if name in _operator_set():
        return (f"Setting {env_name(name)} is set by the operator (environment or secrets.toml); "
                "it cannot be changed here.")
    return None


def masked(name: str, value: Any) -> str:
    """`value` as the Settings page may show it: an operator setting shows its scheme and host at most."""
    if name not in OPERATOR_FIELDS:
        return str(value)
    text = str(value or "")
    if not text:
        return "(not set)"
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return "(set, hidden)"
    # the path and query of a webhook URL are its secret (Slack, Discord, Teams all put the token there)
    return f"{parts.scheme}://{host}/…" if parts.scheme and host else "(set, hidden)"


def _audited(name: str, value: Any) -> Any:
    """A value as the audit trail keeps it: an operator setting's (a webhook URL holds its token) masked."""
    return masked(name, value) if name in OPERATOR_FIELDS else value


def load(engine: Engine) -> dict[str, Any]:
    """The stored overrides, decoded; unknown or secret keys, and operator settings the environment sets, are ignored.

    Read as the system: the settings are the process's, whoever's page run starts it (a signed-out
    visitor may read no row).
    """
    with read_conn(engine, actor=system_actor()) as conn:
        rows = conn.execute(select(app_settings.c.key, app_settings.c.value)).all()
    operator_set = _operator_set()
    return {key: _decoded(raw) for key, raw in rows if key in STORABLE and key not in operator_set}


def _decoded(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def save(engine: Engine, changes: dict[str, Any]) -> Settings:
    """Validate `changes`, store them as the running actor (an admin) and apply them to the running process.

    Raises SettingsError before anything is stored: for a person who is not an admin, for a
    field that may not be stored, and (naming the field) for an invalid value. Each stored
    change writes one audit row, old -> new, in the same transaction.
    """
    actor = current_actor(engine)
    for name in sorted(changes):
        reason = refusal(name, actor)
        if reason is not None:
            raise SettingsError(reason)
    old = get_settings()
    new = old.replace(**changes)  # validates; raises SettingsError naming the field
    now = utcnow()
    with write_tx(engine, actor=actor) as conn:
        for key in sorted(changes):
            value = json.dumps(getattr(new, key))
            conn.execute(delete(app_settings).where(app_settings.c.key == key))
            conn.execute(app_settings.insert().values(key=key, value=value, updated_by=actor.user_id,
                                                      updated_at=now))
            audit(conn, AuditAction.SETTINGS_CHANGE, "setting", key,
                  {"old": _audited(key, getattr(old, key)), "new": _audited(key, getattr(new, key))}, actor=actor)
    return override_settings(**{k: getattr(new, k) for k in changes})


def reset(engine: Engine, keys: list[str] | None = None) -> int:
    """Forget stored overrides (all, or `keys`; admins only, audited); they take effect at the next start."""
    actor = current_actor(engine)
    if not may_change(actor):
        raise SettingsError(ADMINS_ONLY)
    with write_tx(engine, actor=actor) as conn:
        where = [] if keys is None else [app_settings.c.key.in_(keys)]
        gone = conn.execute(select(app_settings.c.key, app_settings.c.value).where(*where)).all()
        conn.execute(delete(app_settings).where(*where))
        for key, raw in gone:
            audit(conn, AuditAction.SETTINGS_CHANGE, "setting", key,
                  {"old": _audited(key, _decoded(raw)), "new": "(default at the next start)"}, actor=actor)
        return len(gone)


def apply_persisted(engine: Engine) -> tuple[Settings, list[str]]:
    """Apply stored overrides at start; invalid ones are skipped and named in the returned list."""
    skipped: list[str] = []
    applied: dict[str, Any] = {}
    for key, value in load(engine).items():
        try:
            get_settings().replace(**applied, **{key: value})
        except (SettingsError, TypeError) as exc:
            skipped.append(f"{key}: {exc}")
            continue
        applied[key] = value
    settings = override_settings(**applied) if applied else get_settings()
    return settings, skipped
