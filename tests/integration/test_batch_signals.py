"""Real worker processes stopped, continued and killed around Pause, Resume and Cancel, on both engines.

Each test starts `python -m core worker` processes against a real sandbox server whose
replies are slow enough to catch items in flight, and sends them real signals (SIGSTOP,
SIGCONT, SIGKILL). What it checks is what a person sees: the batch's state and counts, read
from the items, agree with what was saved, and no item is generated twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
import sqlalchemy as sa
from batch_support import item_counts, run_worker_here, start_worker, wait_for, worker_env

from core.batches.service import cancel_batch, create_batch, get_batch_status, pause_batch, resume_batch
from core.llm.sandbox import SandboxServer
from core.recovery import scan
from core.store.schema import batch_items, conversations

COUNT = 8
CONCURRENCY = "4"
SLOW_MS = 2500  # the replies in flight when the signal arrives come this long after their request


SANDBOX = {"seed": 5, "latency_ms": SLOW_MS, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}


def model_calls(srv: SandboxServer) -> int:
    return int(srv.stats()["messages_requests"])


def running_at(engine, batch_id: str) -> int:
    return item_counts(engine, batch_id).get("running", 0)


def in_flight_at(engine, srv: SandboxServer, batch_id: str, n: int) -> None:
    """Wait until n items are claimed and their n requests have reached the (slow) sandbox."""
    wait_for(lambda: running_at(engine, batch_id) >= n and model_calls(srv) >= n, 90, f"{n} items in flight")


def saved_indexes(engine, batch_id: str) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(conversations.c.item_index)
                                   .where(conversations.c.batch_id == batch_id)).scalars())


def stop_outside_a_write(proc, engine) -> None:
    """SIGSTOP `proc` at a moment it holds no SQLite write lock.

    SQLite has one writer: a process frozen inside a write transaction (a heartbeat, a commit)
    blocks every other writer until it runs again, which no lease can undo. Postgres ends such
    a session (db_idle_in_transaction_timeout_s), so there any moment will do.
    """
    for _ in range(100):
        os.kill(proc.pid, signal.SIGSTOP)
        if engine.dialect.name != "sqlite":
            return
        probe = sqlite3.connect(engine.url.database, timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:  # locked: frozen mid-write; let it finish and try again
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()
    raise AssertionError("the worker held the SQLite write lock at every try")


def test_a_worker_stopped_past_its_lease_commits_late_and_the_batch_ends_completed(engine, sandbox, monkeypatch):
    """SIGSTOP past the lease, its items failed as worker_lost, SIGCONT: the late replies are kept, batch completed."""
    batch_id = create_batch(engine, template="tutoring", count=COUNT, turns=4, concurrency=4)
    # one lost attempt is the last: the successor fails the stopped worker's items, as the review saw
    env = worker_env(sandbox.base_url, STUDIO_ITEM_MAX_ATTEMPTS="1", STUDIO_ITEM_MAX_LOST_ATTEMPTS="1",
                     # stopped mid-transaction (a heartbeat), its row locks go when Postgres ends the session
                     STUDIO_DB_IDLE_IN_TRANSACTION_TIMEOUT_S="2")
    stopped = start_worker(env, "--concurrency", CONCURRENCY)
    try:
        in_flight_at(engine, sandbox, batch_id, 4)
        stop_outside_a_write(stopped, engine)
        sandbox.configure(latency_ms=0)  # the successor's calls are quick; those in flight stay slow
        wait_for(lambda: get_batch_status(engine, batch_id)["interrupted"], 10, "the stopped worker's lease to run out")
        run_worker_here(monkeypatch, env)  # takes the batch over, sweeps, works the rest, finalizes
        st = get_batch_status(engine, batch_id)
        assert (st["state"], st["done"], st["failed"]) == ("failed", 4, 4), st
        assert all(f["last_error_code"] == "worker_lost" for f in _failed(engine, batch_id))
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    assert stopped.wait(timeout=30) == 0, stopped.stderr.read().decode()[-2000:] if stopped.stderr else ""

    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"], st["failed"], st["running"], st["pending"]) == ("completed", COUNT, 0, 0, 0), st
    assert st["status_reason"] is None
    assert saved_indexes(engine, batch_id) == list(range(COUNT))  # each saved once
    assert model_calls(sandbox) == COUNT  # the late replies were kept, not paid for again by a retry
    with pytest.raises(Exception, match="finished"):
        resume_batch(engine, batch_id, failed_only=True)  # nothing failed is left to retry


def _failed(engine, batch_id: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(batch_items.c.item_index, batch_items.c.last_error_code)
                                              .where(batch_items.c.batch_id == batch_id,
                                                     batch_items.c.status == "failed")).mappings()]


def test_pause_then_resume_does_not_regenerate_items_still_in_flight(engine, sandbox, monkeypatch):
    """Pause and Resume while a live worker generates 4 items; a second worker joins: 8 items, 8 model calls."""
    batch_id = create_batch(engine, template="tutoring", count=COUNT, turns=4, concurrency=4)
    # claims that outlast a starved heartbeat on a loaded machine: an item whose claim ran out
    # would rightly be taken over and generated again, which is not what this test is about
    env = worker_env(sandbox.base_url, STUDIO_LEASE_DURATION_S="10", STUDIO_HEARTBEAT_INTERVAL_S="0.5")
    live = start_worker(env, "--concurrency", CONCURRENCY)
    try:
        in_flight_at(engine, sandbox, batch_id, 4)
        pause_batch(engine, batch_id)
        assert resume_batch(engine, batch_id) == COUNT - 4  # the 4 in flight stay with their live worker
        assert running_at(engine, batch_id) == 4
        sandbox.configure(latency_ms=200)
        run_worker_here(monkeypatch, env)  # claims the resumed batch at once (its lease was reset)
        assert live.wait(timeout=30) == 0, live.stderr.read().decode()[-2000:] if live.stderr else ""
    finally:
        if live.poll() is None:
            live.kill()
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"]) == ("completed", COUNT), st
    assert saved_indexes(engine, batch_id) == list(range(COUNT))
    assert model_calls(sandbox) == COUNT, "an item in flight at Resume was generated again"


def test_a_cancelled_batch_ends_even_when_its_worker_was_killed_mid_item(engine, sandbox):
    """kill -9 with 4 items in flight, then Cancel: nothing stays running, the batch is cancelled and ends."""
    batch_id = create_batch(engine, template="tutoring", count=COUNT, turns=4, concurrency=4)
    killed = start_worker(worker_env(sandbox.base_url, STUDIO_LEASE_DURATION_S="600"), "--concurrency", CONCURRENCY)
    in_flight_at(engine, sandbox, batch_id, 4)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=10) == -signal.SIGKILL

    assert cancel_batch(engine, batch_id) == COUNT  # 4 pending and the dead worker's 4 running
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["running"], st["pending"], st["skipped"]) == ("cancelled", 0, 0, COUNT), st
    found = scan(engine)
    assert batch_id not in {f["id"] for kind in found.values() for f in kind}  # nothing left to recover
