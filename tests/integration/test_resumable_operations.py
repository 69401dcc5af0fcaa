"""Long operations without an items table resume from their checkpoint after an interruption, on both engines."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from batch_support import wait_for

from core.config import ROOT, override_settings
from core.errorlog import set_resolved
from core.errors import DatabaseError
from core.store import resumable
from core.store.schema import error_logs, recovery_checkpoints, utcnow
from core.store.tx import write_tx


def _seed(engine, n: int, *, days_old: float, fingerprint: str = "f" * 32) -> None:
    created = utcnow() - timedelta(days=days_old)
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), [dict(
            error_id=uuid.uuid4().hex, created_at=created, error_type="api", error_code="x", severity="error",
            message="m", fingerprint=fingerprint, is_recoverable=False, recovered=False, resolved=False)
            for _ in range(n)])


def _rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(error_logs)).scalar_one()


def _checkpoint(engine, kind: str, operation_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(recovery_checkpoints).where(
            recovery_checkpoints.c.operation_type == kind,
            recovery_checkpoints.c.operation_id == operation_id)).mappings().first()


def test_retention_killed_mid_way_resumes_from_its_checkpoint(engine, monkeypatch):
    """kill -9 during `errors retention --apply`: the checkpoint counts exactly what went; the rerun finishes it."""
    total = 3000
    _seed(engine, total, days_old=400)
    _seed(engine, 5, days_old=1)  # within retention: never touched
    monkeypatch.setenv("STUDIO_CHECKPOINT_CHUNK_ROWS", "10")
    cli = [sys.executable, "-m", "core", "errors", "retention", "--apply"]
    proc = subprocess.Popen(cli, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (_checkpoint(engine, "retention", "error_logs") or {}).get("completed_count", 0) >= 100,
                 60, "the retention to be under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    cp = _checkpoint(engine, "retention", "error_logs")
    removed = total + 5 - _rows(engine)
    assert 0 < removed < total, "the kill came too late to interrupt it"
    assert cp["expires_at"] is None  # unfinished
    assert cp["completed_count"] == removed  # advanced in the chunk's transaction: never ahead, never behind
    started = cp["state"]["params"]["now"]

    done = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"removed {total} rows" in done.stdout  # counted over both runs
    assert _rows(engine) == 5
    cp = _checkpoint(engine, "retention", "error_logs")
    assert cp["expires_at"] is not None and cp["completed_count"] == total
    assert cp["state"]["params"]["now"] == started  # the cut-offs of the first run, not of the resume

    done = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "removed 0 rows" in done.stdout  # a finished run is not resumed: the next one starts afresh
    assert datetime.fromisoformat(_checkpoint(engine, "retention", "error_logs")["state"]["params"]["now"]) > \
        datetime.fromisoformat(started)


def test_resolving_a_group_interrupted_between_chunks_resumes_with_its_first_time_and_user(engine, monkeypatch):
    """A resolve-all cut off after its first chunk continues when asked again: every row the same time and user."""
    fp = "a" * 32
    _seed(engine, 25, days_old=1, fingerprint=fp)
    override_settings(checkpoint_chunk_rows=10)
    real_advance = resumable.advance
    calls = 0

    def advance_then_lose_the_database(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:  # the second chunk's transaction dies: it rolls back with its checkpoint
            raise DatabaseError("server closed the connection unexpectedly", code="db_connection")
        return real_advance(*args, **kwargs)

    monkeypatch.setattr("core.errorlog.resolve.advance", advance_then_lose_the_database)
    with pytest.raises(DatabaseError):
        set_resolved(engine, fingerprint=fp, resolved=True, user="ana")
    assert _checkpoint(engine, "resolve", fp)["completed_count"] == 10
    monkeypatch.setattr("core.errorlog.resolve.advance", real_advance)

    assert set_resolved(engine, fingerprint=fp, resolved=True, user="ben") == 25  # all of the group, both runs
    with engine.connect() as conn:
        marks = set(conn.execute(sa.select(error_logs.c.resolved, error_logs.c.resolved_by, error_logs.c.resolved_at)))
    assert len(marks) == 1 and next(iter(marks))[:2] == (True, "ana")  # one action, one time, its first user
    assert _checkpoint(engine, "resolve", fp)["expires_at"] is not None
