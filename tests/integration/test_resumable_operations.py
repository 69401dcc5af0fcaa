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
from people import person

from core.auth import acting_as
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


def _checkpoint(engine, kind: str, operation_id: str, owner: str | None = None):
    """The checkpoint of `operation_id` (a group's: of its person, the one `owner` names, or the only one)."""
    cp = recovery_checkpoints.c
    with engine.connect() as conn:
        return conn.execute(sa.select(recovery_checkpoints).where(
            cp.operation_type == kind, cp.operation_id.startswith(operation_id, autoescape=True),
            *([cp.owner_id == owner] if owner else [])).order_by(cp.id)).mappings().first()


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


def test_resolving_a_group_interrupted_between_chunks_resumes_with_its_first_time(engine, monkeypatch):
    """A resolve-all cut off after its first chunk continues when its person asks again: every row the same time."""
    fp = "a" * 32
    _seed(engine, 25, days_old=1, fingerprint=fp)
    ana = person(engine, "ana@example.com")
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
    with acting_as(ana), pytest.raises(DatabaseError):
        set_resolved(engine, fingerprint=fp, resolved=True)
    assert _checkpoint(engine, "resolve", fp)["completed_count"] == 10
    assert _checkpoint(engine, "resolve", fp)["owner_id"] == ana.user_id
    monkeypatch.setattr("core.errorlog.resolve.advance", real_advance)

    with acting_as(ana):
        assert set_resolved(engine, fingerprint=fp, resolved=True) == 25  # all of the group, both runs
    with engine.connect() as conn:
        marks = set(conn.execute(sa.select(error_logs.c.resolved, error_logs.c.resolved_by, error_logs.c.resolved_at)))
    assert len(marks) == 1 and next(iter(marks))[:2] == (True, ana.user_id)  # one action, one time
    assert _checkpoint(engine, "resolve", fp)["expires_at"] is not None


def test_another_persons_resolve_all_is_their_own_operation_not_a_resume(engine):
    """B's resolve-all of a group A left unfinished starts B's own checkpoint and leaves A's where it was."""
    fp = "b" * 32
    _seed(engine, 5, days_old=1, fingerprint=fp)
    ana, ben = person(engine, "ana@example.com"), person(engine, "ben@example.com")
    with acting_as(ana):
        cp = resumable.begin(engine, "resolve", f"{fp}:{ana.user_id.replace('-', '')}"[:64], {"resolved_at": None})
    with acting_as(ben):
        assert set_resolved(engine, fingerprint=fp, resolved=True) == 5
    with engine.connect() as conn:
        mine = conn.execute(sa.select(recovery_checkpoints.c.owner_id, recovery_checkpoints.c.expires_at).where(
            recovery_checkpoints.c.operation_id == cp.operation_id)).one()
    assert mine == (ana.user_id, None)  # untouched, still A's, still unfinished
    assert _checkpoint(engine, "resolve", fp, owner=ben.user_id)["expires_at"] is not None
