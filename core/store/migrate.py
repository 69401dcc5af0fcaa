"""Bring a database to the newest schema with Alembic (`python -m core db migrate`)."""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from core.auth.claims import AS_LOGIN_ROLE
from core.config import ROOT

__all__ = ["migrate"]

_done: set[str] = set()
_lock = threading.Lock()


def _alembic_config() -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


def migrate(engine: Engine, *, force: bool = False, revision: str = "head") -> None:
    """Upgrade `engine`'s database to head (or to `revision`). Idempotent; cheap after the first call per process."""
    key = str(engine.url)
    with _lock:
        if key in _done and not force and revision == "head":
            return
        cfg = _alembic_config()
        # SQLite: the write lock first (BEGIN IMMEDIATE), so a writer that holds it (the error log's)
        # is waited for; a deferred transaction that has read fails at once when it needs to write
        with engine.connect().execution_options(sqlite_immediate=True, **{AS_LOGIN_ROLE: True}) as conn:
            if engine.dialect.name == "postgresql":
                # one migrator at a time when several workers start together
                conn.exec_driver_sql("SELECT pg_advisory_lock(7201)")
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    # a failed migration left its transaction aborted: end it first, or the unlock
                    # fails too and its error hides the migration's own (the lock outlives a rollback)
                    conn.rollback()
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(7201)")
                    conn.commit()
        if revision == "head":
            _done.add(key)
