"""Settings changed in the UI: saved to the `app_settings` table, applied without a restart.

Only tunable numbers and names are stored. Secrets (the API key) and where things live
(database URL, data dir, endpoint, environment) never go into the table: they come from
the environment or secrets.toml only, so a row can never leak or override them.

Settings that carry a secret or send data out (config.OPERATOR_FIELDS, e.g. the alert webhook
URL) belong to the operator: where the environment or secrets.toml sets one, a saved value is
ignored and the UI cannot save another. For every other setting a saved value wins.
`refusal(name, user)` is the one place that answers "may this user change this setting here".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select

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

__all__ = ["NOT_STORED", "STORABLE", "apply_persisted", "load", "masked", "refusal", "reset", "save"]

NOT_STORED = frozenset({
    "anthropic_api_key", "anthropic_base_url", "database_url", "data_dir", "environment", "retry_instant",
})
STORABLE = frozenset(Settings.model_fields) - NOT_STORED


def _operator_set() -> frozenset[str]:
    return OPERATOR_FIELDS & set_outside_the_app()


def refusal(name: str, user: str | None = None) -> str | None:
    """Why `user` may not change setting `name` on the Settings page, or None if they may.

    With users and roles (a later issue) the rule "only admins change OPERATOR_FIELDS" goes
    here; today every local user may change what the operator has not set.
    """
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


def load(engine: Engine) -> dict[str, Any]:
    """The stored overrides, decoded; unknown or secret keys, and operator settings the environment sets, are ignored."""
    with read_conn(engine) as conn:
        rows = conn.execute(select(app_settings.c.key, app_settings.c.value)).all()
    values: dict[str, Any] = {}
    operator_set = _operator_set()
    for key, raw in rows:
        if key in STORABLE and key not in operator_set:
            try:
                values[key] = json.loads(raw)
            except json.JSONDecodeError:
                values[key] = raw
    return values


def save(engine: Engine, changes: dict[str, Any], *, user: str | None = None) -> Settings:
    """Validate `changes`, store them and apply them to the running process.

    Raises SettingsError (naming the field) before anything is stored if a value is invalid,
    and for a field that may not be stored.
    """
    for name in sorted(changes):
        reason = refusal(name, user)
        if reason is not None:
            raise SettingsError(reason)
    new = get_settings().replace(**changes)  # validates; raises SettingsError naming the field
    now = utcnow()
    with write_tx(engine) as conn:
        for key in changes:
            value = json.dumps(getattr(new, key))
            conn.execute(delete(app_settings).where(app_settings.c.key == key))
            conn.execute(app_settings.insert().values(key=key, value=value, updated_by=user, updated_at=now))
    return override_settings(**{k: getattr(new, k) for k in changes})


def reset(engine: Engine, keys: list[str] | None = None) -> int:
    """Forget stored overrides (all, or `keys`); they take effect at the next start."""
    with write_tx(engine) as conn:
        stmt = delete(app_settings)
        if keys is not None:
            stmt = stmt.where(app_settings.c.key.in_(keys))
        return int(conn.execute(stmt).rowcount or 0)


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
