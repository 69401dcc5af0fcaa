"""A real database outage under real worker processes: live workers keep their leases and come back at once.

The outage is the one of test_batch_db_outage (Postgres: ALLOW_CONNECTIONS false and every
backend terminated; SQLite: another connection holds BEGIN EXCLUSIVE), but the workers are
`python -m core worker` processes with their own circuit breakers, as in production.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE, Outage, item_counts, start_worker, wait_for, worker_env
from sqlalchemy import Engine

from core.batches.service import create_batch, get_batch_status
from core.config import get_settings
from core.errorlog.spool import Spool
from core.llm.sandbox import SandboxServer
from core.store import create_store_engine, migrate
from core.store.schema import batch_items, error_logs

CONCURRENCY = 4


SANDBOX = {"seed": 3, "latency_ms": 1500, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}


def outage_for(engine: Engine, request) -> Outage:
    admin = request.getfixturevalue("pg_databases").admin() if engine.dialect.name == "postgresql" else None
    return Outage(engine, admin)


def model_calls(srv: SandboxServer) -> int:
    return int(srv.stats()["messages_requests"])


def breaker_opened_in_a_worker(engine: Engine) -> bool:
    """The workers' error logs (spooled during the outage, replayed after) say their database breaker opened."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.select(sa.func.count()).select_from(error_logs).where(
            error_logs.c.component == "breaker.database", error_logs.c.error_code == "circuit_opened")).scalar_one())


def breaker_open_in_the_spool() -> bool:
    """While the store is away, a worker's log of its open database breaker waits in the data dir's spool."""
    for path in Spool(get_settings().data_dir).pending_files():
        try:
            rows, _ = Spool.read(path)
        except FileNotFoundError:  # claimed or replayed meanwhile
            continue
        if any(r.get("component") == "breaker.database" and r.get("error_code") == "circuit_opened" for r in rows):
            return True
    return False


def replies_sent(srv: SandboxServer) -> int:
    return int(srv.stats()["by_status"].get("200", 0))


def env_for(srv: SandboxServer, **extra: str) -> dict[str, str]:
    return worker_env(srv.base_url, **{
        **UNLIMITED_RATE, "STUDIO_RETRY_INSTANT": "false",  # the store's real backoff, as in production
        "STUDIO_SQLITE_BUSY_TIMEOUT_S": "0.2", "STUDIO_LOG_SPOOL_RETRY_S": "0.5",
        "STUDIO_BREAKER_FAILURE_THRESHOLD": "2", **extra})


def test_a_live_worker_keeps_its_lease_while_its_own_database_breaker_is_open(engine, sandbox, request):
    """Outage opens a worker's DB breaker (cool-down longer than its lease): it keeps its items; none done twice."""
    count = 12
    batch_id = create_batch(engine, template="tutoring", count=count, turns=4, concurrency=CONCURRENCY)
    # the breaker stays open past the lease whatever failure opened it: only the heartbeat can keep it
    env = env_for(sandbox, STUDIO_LEASE_DURATION_S="3", STUDIO_HEARTBEAT_INTERVAL_S="0.3",
                  STUDIO_BREAKER_COOLDOWN_S="4.5", STUDIO_BREAKER_RECONNECT_COOLDOWN_S="4.5")
    outage = outage_for(engine, request)
    live = start_worker(env, "--concurrency", str(CONCURRENCY))
    other = None
    try:
        wait_for(lambda: item_counts(engine, batch_id).get("running", 0) == CONCURRENCY
                 and model_calls(sandbox) >= CONCURRENCY, 30, "items in flight")
        outage.begin()
        # heartbeats and the held replies' commits fail: the worker's breaker opens
        wait_for(lambda: replies_sent(sandbox) >= CONCURRENCY and breaker_open_in_the_spool(), 30,
                 "the replies in flight and the worker's breaker to open during the outage")
        outage.end()
        sandbox.configure(latency_ms=100)
        other = start_worker(env, "--concurrency", str(CONCURRENCY))  # would take over a lease that ran out
        assert live.wait(timeout=40) == 0, live.stderr.read().decode()[-2000:] if live.stderr else ""
        assert other.wait(timeout=20) == 0, other.stderr.read().decode()[-2000:] if other.stderr else ""
    finally:
        outage.end()
        for proc in (live, other):
            if proc is not None and proc.poll() is None:
                proc.kill()
    st = get_batch_status(engine, batch_id)
    assert (st["state"], st["done"]) == ("completed", count), st
    wait_for(lambda: breaker_opened_in_a_worker(engine), 10, "the workers' logs of the open breaker")
    assert model_calls(sandbox) == count, "an item was generated twice"
    with engine.connect() as conn:
        lost = conn.execute(sa.select(sa.func.max(batch_items.c.lost_attempts))
                            .where(batch_items.c.batch_id == batch_id)).scalar_one()
    assert lost == 0, "a live worker's items were taken over as if it had died"


@pytest.mark.postgres
def test_workers_are_back_at_full_concurrency_within_seconds_of_the_database_returning(pg_databases, sandbox,
                                                                                       monkeypatch, request):
    """Postgres restart (connections dropped): with the default 30 s cool-down, all 4 slots work again in seconds."""
    url = pg_databases.new()
    monkeypatch.setenv("DATABASE_URL", url)
    engine = create_store_engine(url)
    migrate(engine, force=True)
    count = 60
    batch_id = create_batch(engine, template="tutoring", count=count, turns=4, concurrency=CONCURRENCY)
    sandbox.configure(latency_ms=400)
    env = env_for(sandbox, STUDIO_LEASE_DURATION_S="20", STUDIO_HEARTBEAT_INTERVAL_S="1",
                  STUDIO_BREAKER_FAILURE_THRESHOLD="5")  # the production breaker: 5 failures, 30 s cool-down
    outage = Outage(engine, pg_databases.admin())
    worker = start_worker(env, "--concurrency", str(CONCURRENCY))
    try:
        wait_for(lambda: item_counts(engine, batch_id).get("done", 0) >= 4, 30, "first commits")
        outage.begin()
        wait_for(breaker_open_in_the_spool, 30, "the worker's database breaker to open during the outage")
        outage.end()
        back = time.monotonic()
        calls = model_calls(sandbox)
        # full concurrency: every slot holds a claimed item and the model has new calls for them
        wait_for(lambda: item_counts(engine, batch_id).get("running", 0) == CONCURRENCY
                 and model_calls(sandbox) >= calls + CONCURRENCY, 12, "full concurrency after the outage")
        seconds = time.monotonic() - back
        wait_for(lambda: breaker_opened_in_a_worker(engine), 10, "the worker's log of its open database breaker")
    finally:
        outage.end()
        worker.kill()
        worker.wait(timeout=10)
        engine.dispose()
    print(f"full concurrency {seconds:.1f} s after the database returned")
