"""The one schema migrates the same on both engines."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.auth import acting_as, system_actor
from core.config import reload_settings
from core.store import create_store_engine, migrate
from core.store.schema import error_logs
from core.store.tx import write_tx


def test_migrate_is_idempotent(engine):
    """Migrating twice leaves one schema and no error."""
    migrate(engine, force=True)
    names = set(sa.inspect(engine).get_table_names())
    assert {"error_logs", "batch_jobs", "batch_items", "conversations", "conversation_drafts",
            "recovery_checkpoints"} <= names


def test_timestamps_round_trip_as_utc(engine):
    """A timestamp written in any zone reads back as the same instant, in UTC."""
    local = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert().values(
            error_id="e1", created_at=local, error_type="api", error_code="x", severity="error",
            message="m", fingerprint="f", is_recoverable=False, recovered=False, resolved=False))
    with engine.connect() as conn:
        got = conn.execute(sa.select(error_logs.c.created_at)).scalar_one()
    assert got == local and got.tzinfo == UTC


def test_bulk_insert_stores_timestamps_as_a_core_insert_does(engine):
    """A whole-second timestamp written by the bulk path is found by a range query starting at it."""
    from core.store.dialect import bulk_insert

    instant = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    columns = ("error_id", "created_at", "error_type", "error_code", "severity", "message", "fingerprint",
               "is_recoverable", "recovered", "resolved")
    with acting_as(system_actor()), write_tx(engine) as conn:  # bulk writes are the system's (COPY)
        conn.execute(error_logs.insert().values(dict(zip(columns, (
            "core", instant, "api", "x", "error", "m", "f", False, False, False), strict=True))))
        assert bulk_insert(conn, error_logs, columns, [
            ("bulk", instant, "api", "x", "error", "m", "f", False, False, False)]) == 1
    with engine.connect() as conn:
        found = conn.execute(sa.select(error_logs.c.error_id).where(error_logs.c.created_at >= instant)
                             .order_by(error_logs.c.error_id)).scalars().all()
        stored = conn.execute(sa.select(sa.cast(error_logs.c.created_at, sa.String))
                              .order_by(error_logs.c.error_id)).scalars().all()
    assert found == ["bulk", "core"]
    assert stored[0] == stored[1]  # the same text (SQLite) or the same timestamptz (Postgres)


def test_failed_write_transaction_is_rolled_back_whole(engine):
    """Nothing of a transaction that raises is kept."""
    try:
        with write_tx(engine) as conn:
            conn.execute(error_logs.insert().values(
                error_id="e2", error_type="api", error_code="x", severity="error", message="m",
                fingerprint="f", is_recoverable=False, recovered=False, resolved=False))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(error_logs)).scalar_one() == 0



@contextmanager
def _sqlite_engine(tmp_path, monkeypatch, **env: str) -> Iterator[sa.Engine]:
    """A new SQLite engine under `env` (settings read again), disposed afterwards."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    eng = create_store_engine(f"sqlite:///{tmp_path / 'pragma.db'}")
    try:
        yield eng
    finally:
        eng.dispose()


def _pragma(eng: sa.Engine, name: str) -> int:
    with eng.connect() as conn:
        return int(conn.exec_driver_sql(f"PRAGMA {name}").scalar())


@pytest.mark.parametrize(("cache_mb", "expected"), [
    ("48", -48 * 1024),
    ("0", sqlite3.connect(":memory:").execute("PRAGMA cache_size").fetchone()[0]),  # SQLite's own default
])
def test_sqlite_connections_get_the_configured_page_cache(tmp_path, monkeypatch, cache_mb, expected):
    """Every SQLite connection of the app runs with the page cache named by sqlite_cache_mb (0: SQLite's default)."""
    with _sqlite_engine(tmp_path, monkeypatch, STUDIO_SQLITE_CACHE_MB=cache_mb) as eng:
        assert _pragma(eng, "cache_size") == expected


def test_a_stand_alone_workers_connections_take_its_smaller_page_cache(tmp_path, monkeypatch):
    """limit_sqlite_cache: connections opened before (pooled) and after both run with the worker's cache."""
    from core.store.engine import limit_sqlite_cache

    with _sqlite_engine(tmp_path, monkeypatch, STUDIO_SQLITE_CACHE_MB="64") as eng:
        assert _pragma(eng, "cache_size") == -64 * 1024
        limit_sqlite_cache(eng, 4)
        with eng.connect() as first, eng.connect() as second:
            assert [c.exec_driver_sql("PRAGMA cache_size").scalar() for c in (first, second)] == [-4096, -4096]


def test_sqlite_connections_wait_the_configured_busy_timeout(tmp_path, monkeypatch):
    """Every SQLite connection of the app waits sqlite_busy_timeout_s for another connection's lock."""
    with _sqlite_engine(tmp_path, monkeypatch, STUDIO_SQLITE_BUSY_TIMEOUT_S="0.25") as eng:
        assert _pragma(eng, "busy_timeout") == 250


def test_sqlite_full_text_index_merges_sixteen_segments_at_a_time(engine):
    """Migration 0006 sets the FTS5 index's automerge to 16 (SQLite; Postgres has no such index)."""
    with engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        automerge = None
        if engine.dialect.name == "sqlite":
            automerge = conn.execute(sa.text(
                "SELECT v FROM error_logs_fts_config WHERE k = 'automerge'")).scalar_one()
    assert revision >= "0006"
    assert automerge == (16 if engine.dialect.name == "sqlite" else None)
