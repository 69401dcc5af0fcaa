"""Helpers shared by the integration tests that run a batch worker against the sandbox."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.config import ROOT, reload_settings
from core.store.schema import batch_items

__all__ = ["UNLIMITED_RATE", "Outage", "done_count", "item_counts", "postgres_engine", "run_worker_here", "start_worker",
           "wait_for", "worker_env"]

HERE = Path(__file__).resolve().parent

# the worker's own rate limiter out of the way: the sandbox answers as fast as asked
UNLIMITED_RATE = {
    "STUDIO_RATE_LIMIT_RPM": "1000000",
    "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000",
    "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000",
}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def postgres_engine(pg_databases: Any, monkeypatch: Any) -> Iterator[Engine]:
    """A fresh migrated Postgres database, made this test's DATABASE_URL, and an engine on it (disposed after)."""
    from core.store import create_store_engine, migrate

    url = pg_databases.new()
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    engine = create_store_engine(url)
    migrate(engine, force=True)
    try:
        yield engine
    finally:
        engine.dispose()


def done_count(engine: Engine, batch_id: str) -> int:
    """How many of the batch's items are done."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
            batch_items.c.batch_id == batch_id, batch_items.c.status == "done")).scalar_one()


def item_counts(engine: Engine, batch_id: str) -> dict[str, int]:
    """The batch's items by status, read from the items themselves."""
    with engine.connect() as conn:
        return {str(s): int(n) for s, n in conn.execute(
            sa.select(batch_items.c.status, sa.func.count()).where(batch_items.c.batch_id == batch_id)
            .group_by(batch_items.c.status))}


def worker_env(base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `python -m core worker` process: this test's database, short leases, fast polls."""
    env = dict(os.environ)  # DATABASE_URL and STUDIO_DATA_DIR of this test
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "STUDIO_RETRY_INSTANT": "true",
        "STUDIO_LEASE_DURATION_S": "1",
        "STUDIO_HEARTBEAT_INTERVAL_S": "0.25",
        "STUDIO_WORKER_POLL_INTERVAL_S": "0.2",
        **UNLIMITED_RATE,
        "STUDIO_BREAKER_FAILURE_THRESHOLD": "100000",  # transient faults here must not open it
        "STUDIO_ITEM_MAX_ATTEMPTS": "10",
    })
    env.update(extra)
    return env


def start_worker(env: dict[str, str], *args: str, after_replies: int | None = None,
                 poison_persona: str | None = None, remote_step: str | None = None) -> subprocess.Popen[bytes]:
    """A real `python -m core worker --once --concurrency 8 [args]` process; with a crash hook (see crash_hook)."""
    cli = ["worker", "--once", "--concurrency", "8", *args]
    if after_replies is None and poison_persona is None and remote_step is None:
        command = [sys.executable, "-m", "core", *cli]
    else:
        hook = [f"--after-replies={after_replies}"] if after_replies else []
        hook += [f"--poison-persona={poison_persona}"] if poison_persona else []
        hook += [f"--remote-step={remote_step}"] if remote_step else []
        command = [sys.executable, "-c", "import crash_hook; crash_hook.main()", *hook, *cli]
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_worker_here(monkeypatch: Any, env: dict[str, str], concurrency: int = 8) -> Any:
    """A `worker --once` in this process (saves a process start-up where the test needs no signal for it)."""
    from core.batches.worker import BatchWorker
    from core.llm.client import reset_client
    from core.resilience import reset_breakers, reset_rate_limiters

    for key, value in env.items():
        if key.startswith(("STUDIO_", "ANTHROPIC_")):
            monkeypatch.setenv(key, value)
    reload_settings()
    reset_client(), reset_breakers(), reset_rate_limiters()
    worker = BatchWorker(concurrency=concurrency)
    try:
        assert asyncio.run(worker.run(once=True)) == 0
    finally:
        reset_client()
    return worker


class Outage:
    """Takes the test's database away and gives it back, the way a real outage does."""

    def __init__(self, engine: Engine, admin: Engine | None) -> None:
        self.engine = engine
        self.admin = admin  # Postgres: a connection to another database of the same server
        self._holder: sqlite3.Connection | None = None
        self.active = False

    def begin(self) -> None:
        self.active = True
        if self.admin is None:
            self._holder = sqlite3.connect(self.engine.url.database, isolation_level=None, check_same_thread=False)
            self._holder.execute("BEGIN EXCLUSIVE")
            return
        name = self.engine.url.database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})

    def end(self) -> None:
        if not self.active:
            return
        if self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{self.engine.url.database}" WITH ALLOW_CONNECTIONS true')
        self.active = False
