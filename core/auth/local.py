"""The process default actor: the local user (STUDIO_USER) in local mode and in the CLI.

Resolved once per database and name, on first use, then kept: a context with no actor of its
own (a test, a CLI command, a thread of the local app) acts as that user.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from core.auth.actor import Actor, set_default_resolver

__all__ = ["forget_local_user", "use_local_user_by_default", "use_nobody_by_default"]

_lock = threading.Lock()
_resolved: dict[tuple[str, str], Actor] = {}


def _local_user(engine: Engine | None) -> Actor:
    from core.auth.users import local_actor
    from core.config import get_settings
    from core.store import get_engine

    settings = get_settings()
    engine = engine or get_engine()
    key = (engine.url.render_as_string(hide_password=True), settings.user_name)
    actor = _resolved.get(key)
    if actor is None:
        with _lock:
            actor = _resolved.get(key)
            if actor is None:
                actor = _resolved[key] = local_actor(engine)
    return actor


def _peek() -> Actor | None:
    from core.config import get_settings

    name = get_settings().user_name
    # the configured database's local user, or (tests, tools) the one database in use
    found = [a for (_url, who), a in _resolved.items() if who == name]
    return found[0] if len(found) == 1 else None


def use_local_user_by_default() -> None:
    set_default_resolver(_local_user, _peek)


def use_nobody_by_default() -> None:
    """Sign-in is configured: a context that was not given a person acts as nobody."""
    set_default_resolver(None)


def forget_local_user() -> None:
    """Drop the resolved local users (tests: each gets a fresh database)."""
    with _lock:
        _resolved.clear()


use_local_user_by_default()
