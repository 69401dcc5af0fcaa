"""The database goes away in the middle of a running batch, on both engines: nothing lost, nothing duplicated, all logged.

A real worker (in a thread of this process, so the test can read its error recorder) works a
batch against the real sandbox server while the database is made unavailable for a few
seconds, for real, with no mock of the store:

- Postgres: an admin connection sets ``ALLOW_CONNECTIONS false`` on the test's database and
  terminates every backend connected to it, so in-flight transactions die and new
  connections are refused; then it allows connections again.
- SQLite: another connection holds ``BEGIN EXCLUSIVE`` on the file while every connection of
  the app waits only settings.sqlite_busy_timeout_s for it, then fails "database is locked".
  In WAL mode (the app's) an exclusive transaction still lets readers read, so on SQLite
  the outage is a write outage, which is what a locked SQLite file is.

The outage is timed to catch replies between generation and commit: the sandbox is slowed
down first, and the store is taken away only once every slot of the worker holds a call
that the slow sandbox is still answering. Those replies arrive while the store is down;
the worker must hold them until it is back, so each item is generated exactly once and no
item spends an attempt on the outage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE, Outage, done_count, wait_for
from sqlalchemy import Engine

from core.batches.service import create_batch, get_batch_status
from core.batches.worker import BatchWorker
from core.errorlog import flush, recent, recorder_stats
from core.llm.sandbox import SandboxServer
from core.store.schema import batch_items, batch_jobs, conversations, error_logs

COUNT = 24
CONCURRENCY = 4
# how long the database stays away after the worker has first met the outage (longer than a lease)
OUTAGE_HOLD_S = 3.0
FAST_MS = 250
# the calls in flight when the store goes away are answered this long after they arrived:
# ample time to take the store away before they are, short enough for a quick test
SLOW_MS = 3000

SETTINGS = {
    **UNLIMITED_RATE,
    "STUDIO_WORKER_POLL_INTERVAL_S": "0.1",
    "STUDIO_HEARTBEAT_INTERVAL_S": "0.3",
    "STUDIO_LEASE_DURATION_S": "2",
    # the database breaker opens during the outage; it probes again a second later
    "STUDIO_BREAKER_COOLDOWN_S": "1",
    "STUDIO_SQLITE_BUSY_TIMEOUT_S": "0.2",
    "STUDIO_LOG_SPOOL_RETRY_S": "0.5",
    # every recorded row stays in memory, to compare with what reached the store
    "STUDIO_LOG_RING_SIZE": "100000",
    # real store backoff, as in production (the suite's default makes every wait zero)
    "STUDIO_RETRY_INSTANT": "false",
}


@pytest.fixture
def outage(engine: Engine, request) -> Iterator[Outage]:
    admin = request.getfixturevalue("pg_databases").admin() if engine.dialect.name == "postgresql" else None
    o = Outage(engine, admin)
    yield o
    o.end()  # a failed test still gives the database back, so it can be dropped


# latency keeps items in flight long enough for the outage to catch some between reply and commit
SANDBOX = {"seed": 7, "latency_ms": FAST_MS, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = SETTINGS


@pytest.fixture
def sandbox(sandbox: SandboxServer, engine: Engine) -> SandboxServer:
    """The shared sandbox, once the engine's pool is emptied: new connections take the short busy timeout."""
    engine.dispose()
    return sandbox


class WorkerThread:
    """A `worker --once` in a thread: it returns when nothing is left to claim."""

    def __init__(self, engine: Engine) -> None:
        self.worker = BatchWorker(engine, concurrency=CONCURRENCY)
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="outage-test-worker", daemon=True)

    def _main(self) -> None:
        try:
            self.exit_code = asyncio.run(self.worker.run(once=True))
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.worker.request_stop()
        self.thread.join(10)


def item_states(engine: Engine, batch_id: str) -> list[tuple[int, str, str | None, int]]:
    """(index, status, claimed_by, attempts) of the items not done, for a failure message."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(batch_items.c.item_index, batch_items.c.status, batch_items.c.claimed_by,
                      batch_items.c.attempts).where(batch_items.c.batch_id == batch_id,
                                                    batch_items.c.status != "done"))]


def model_calls(sandbox: SandboxServer) -> int:
    """/v1/messages calls the sandbox has received (one per conversation when nothing is generated twice)."""
    return int(sandbox.stats()["messages_requests"])


def database_errors_recorded(batch_id: str) -> list[dict[str, Any]]:
    return [r for r in recent(100_000) if r["error_type"] == "database" and r["operation_id"] == batch_id]


def test_a_database_outage_mid_batch_loses_nothing_duplicates_nothing_and_is_logged(
        engine: Engine, sandbox: SandboxServer, outage: Outage) -> None:
    """The database vanishes for seconds mid-batch: each item generated and saved once, no attempt spent, errors logged."""
    batch_id = create_batch(engine, template="tutoring", count=COUNT, turns=4, concurrency=CONCURRENCY)
    worker = WorkerThread(engine)
    worker.start()
    try:
        wait_for(lambda: done_count(engine, batch_id) >= 6 or not worker.thread.is_alive(), 30, "first commits")
        done_before = done_count(engine, batch_id)
        assert done_before < COUNT - 2 * CONCURRENCY, "the batch finished before the outage could catch it"

        # every slot fills with a call the sandbox answers SLOW_MS after it arrived; then the store goes
        sandbox.configure(latency_ms=SLOW_MS)
        calls_before = model_calls(sandbox)
        wait_for(lambda: model_calls(sandbox) >= calls_before + CONCURRENCY, 10, "slow calls in every slot")
        replies_before = worker.worker.stats.replies
        outage.begin()
        sandbox.configure(latency_ms=FAST_MS)  # for the calls after the outage; those in flight stay slow
        # the slow replies arrive while the store is down, between generation and commit
        wait_for(lambda: worker.worker.stats.replies >= replies_before + CONCURRENCY, 20,
                 "the slow replies to arrive during the outage")
        # the outage is real for the worker (its store calls fail) and for the error log (rows spooled)
        wait_for(lambda: database_errors_recorded(batch_id) and recorder_stats()["spooled"] > 0, 20,
                 "the worker and the error log to meet the outage")
        time.sleep(OUTAGE_HOLD_S)
        outage.end()

        worker.thread.join(45)
        assert not worker.thread.is_alive(), f"the worker never finished the batch: {item_states(engine, batch_id)}"
    finally:
        outage.end()
        if worker.thread.is_alive():
            worker.stop()
    assert worker.error is None and worker.exit_code == 0, worker.error

    status = get_batch_status(engine, batch_id)
    assert status["state"] == "completed", status
    assert (status["done"], status["failed"], status["pending"], status["running"]) == (COUNT, 0, 0, 0)
    with engine.connect() as conn:
        convs = conn.execute(sa.select(conversations.c.id, conversations.c.item_index, conversations.c.input_tokens,
                                       conversations.c.output_tokens, conversations.c.cost_usd)
                             .where(conversations.c.batch_id == batch_id)).all()
        items = conn.execute(sa.select(batch_items.c.item_index, batch_items.c.conversation_id)
                             .where(batch_items.c.batch_id == batch_id)).all()
        job = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == batch_id)).mappings().one()
    assert sorted(c.item_index for c in convs) == list(range(COUNT)), "an item lost or saved twice"
    assert {i.item_index: i.conversation_id for i in items} == {c.item_index: c.id for c in convs}
    assert job["input_tokens"] == sum(c.input_tokens for c in convs)
    assert job["output_tokens"] == sum(c.output_tokens for c in convs)
    assert job["cost_usd"] == pytest.approx(sum(c.cost_usd for c in convs))
    assert job["lease_owner"] is None

    # nothing generated twice: the replies caught by the outage were held and saved, not asked for again
    assert worker.worker.stats.outcomes_held >= CONCURRENCY, "the outage caught no reply before its commit"
    assert model_calls(sandbox) == COUNT, (model_calls(sandbox), worker.worker.stats.outcomes_held)
    assert worker.worker.stats.replies == COUNT
    # attempts counts failed attempts and lost_attempts the worker deaths: none was spent on the outage,
    # and no item was ever put back by the stale-item sweep (which counts a lost attempt)
    with engine.connect() as conn:
        spent = conn.execute(sa.select(batch_items.c.item_index, batch_items.c.attempts, batch_items.c.lost_attempts,
                                       batch_items.c.last_error_code)
                             .where(batch_items.c.batch_id == batch_id,
                                    sa.or_(batch_items.c.attempts != 0, batch_items.c.lost_attempts != 0,
                                           batch_items.c.last_error_code.is_not(None)))
                             ).all()
    assert spent == [], "items charged an attempt or an error by the outage"

    # the spool is replayed once the store is back; then the store holds each recorded row exactly once
    wait_for(lambda: flush(timeout=2.0), 30, "the error log to flush its spool")
    stats = recorder_stats()
    assert stats["spooled"] > 0 and stats["replayed"] >= stats["spooled"]
    assert stats["lost"] == 0 and stats["dropped"] == 0 and stats["rejected"] == 0
    with engine.connect() as conn:
        stored = conn.execute(sa.select(error_logs.c.error_id, error_logs.c.error_type, error_logs.c.error_code,
                                        error_logs.c.operation_id)).all()
    recorded = sorted(r["error_id"] for r in recent(100_000))
    assert 0 < len(recorded) < 100_000  # the ring held every row recorded in this test
    assert sorted(r.error_id for r in stored) == recorded, "error rows lost, or stored twice by the replay"
    outage_rows = [r for r in stored if r.error_type == "database" and r.operation_id == batch_id]
    assert outage_rows, "the outage left no database error in the log"
    expected = {"db_locked"} if engine.dialect.name == "sqlite" else {"db_connection"}
    assert expected & {r.error_code for r in outage_rows}, Counter(r.error_code for r in outage_rows)
