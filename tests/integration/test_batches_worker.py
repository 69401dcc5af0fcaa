"""The batch worker against a real sandbox, on both engines: completion, fatal errors, breaker pauses, attempt limits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE, postgres_engine, wait_for

from core.__main__ import main as cli
from core.batches import checkpoints
from core.batches.background import background_worker_status, start_background_worker, stop_background_worker
from core.batches.service import create_batch, get_batch_status, pause_batch, resume_batch
from core.batches.worker import BREAKER_PAUSE_REASON, BatchWorker
from core.config import ROOT, override_settings
from core.store.schema import batch_items, conversations

FAST = {
    **UNLIMITED_RATE,
    "STUDIO_WORKER_POLL_INTERVAL_S": "0.1",
    "STUDIO_HEARTBEAT_INTERVAL_S": "0.3",
}


SANDBOX = {"seed": 3, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = FAST


@pytest.fixture(autouse=True)
def no_background_worker_left() -> Iterator[None]:
    """A background worker a test started is stopped with it."""
    yield
    stop_background_worker()


def run_worker(engine, concurrency: int = 4) -> BatchWorker:
    worker = BatchWorker(engine, concurrency=concurrency)
    assert asyncio.run(worker.run(once=True)) == 0
    return worker


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


def test_worker_completes_a_batch_with_live_counters(engine, sandbox):
    """A worker completes every item once; tokens, cost and counters add up; --once then exits."""
    bid = create_batch(engine, template="tutoring", count=12, turns=4)
    worker = run_worker(engine)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["failed"]) == ("completed", 12, 0)
    assert st["tokens"] > 0 and st["cost_usd"] > 0 and st["finished_at"] and st["lease_owner"] is None
    with engine.connect() as conn:
        summed = conn.execute(sa.select(sa.func.sum(conversations.c.output_tokens))).scalar_one()
    assert summed == st["output_tokens"]
    assert worker.stats.items_done == 12 and count(engine, conversations) == 12


@pytest.mark.parametrize("fault", [
    {"force_status": 401, "force_message": "invalid x-api-key"},
    {"force_status": 429, "force_message": "Your organization has reached its monthly spend limit."},
])
def test_rejected_key_fails_the_batch_after_a_handful_of_calls(engine, sandbox, fault):
    """A rejected key or a spend limit fails the batch at once, says what to fix, and burns no items."""
    sandbox.configure(**fault)
    bid = create_batch(engine, template="tutoring", count=50, turns=4, concurrency=8)
    run_worker(engine, concurrency=4)
    st = get_batch_status(engine, bid)
    assert st["state"] == "failed"
    assert "resume" in st["status_reason"].lower()
    assert ("API key" in st["status_reason"]) if fault["force_status"] == 401 else ("spend limit" in st["status_reason"])
    assert sandbox.stats()["messages_requests"] <= 6
    assert (st["failed"], st["done"], st["pending"]) == (0, 0, 50)  # nothing burned: all can resume

    sandbox.configure(force_status=None, force_message=None)
    assert resume_batch(engine, bid) == 50
    run_worker(engine, concurrency=8)
    assert get_batch_status(engine, bid)["state"] == "completed"


def test_open_breaker_pauses_then_the_batch_completes_by_itself(engine, sandbox):
    """Overload opens the breaker: the batch pauses without failing items, then finishes once the fault lifts."""
    override_settings(breaker_failure_threshold=3, breaker_cooldown_s=0.5, breaker_success_threshold=1,
                      retry_max_attempts=2, item_max_attempts=3)
    sandbox.configure(force_status=529)
    bid = create_batch(engine, template="tutoring", count=20, turns=4)
    worker = BatchWorker(engine, concurrency=4)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(once=True)), daemon=True)
    thread.start()
    wait_for(lambda: get_batch_status(engine, bid)["state"] == "paused", 30, "breaker pause")
    st = get_batch_status(engine, bid)
    assert st["pause_kind"] == "breaker" and st["status_reason"].startswith(BREAKER_PAUSE_REASON)
    assert st["failed"] == 0 and st["done"] == 0
    # it probes after each cool-down (0.5 s); while the fault lasts it stays paused
    sent = sandbox.stats()["messages_requests"]
    wait_for(lambda: sandbox.stats()["messages_requests"] >= sent + 2, 30, "two probes into the fault")
    assert get_batch_status(engine, bid)["failed"] == 0
    sandbox.configure(force_status=None)
    thread.join(60)
    assert not thread.is_alive()
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["failed"]) == ("completed", 20, 0)


def test_a_long_limiter_wait_shows_on_the_batch_and_is_recorded_once(engine, sandbox):
    """Items held back by a small output-token limit show "waiting for rate limit: N s" while they wait; one log row."""
    from core.errorlog import flush
    from core.store.schema import error_logs

    override_settings(rate_limit_output_tpm=6_000, rate_limit_visible_wait_s=1.0)
    bid = create_batch(engine, template="tutoring", count=2, turns=6, concurrency=2)
    worker = BatchWorker(engine, concurrency=2)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(once=True)), daemon=True)
    thread.start()
    seen: list[int] = []
    wait_for(lambda: seen.append(get_batch_status(engine, bid)["rate_limit_wait_s"] or 0) or seen[-1] >= 1, 30,
             "the wait on the batch")
    thread.join(60)
    assert not thread.is_alive()
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["status_reason"]) == ("completed", 2, None)  # cleared when done
    flush()
    with engine.connect() as conn:
        codes = conn.execute(sa.select(error_logs.c.error_code, error_logs.c.severity)
                             .where(error_logs.c.error_code == "rate_limit_wait")).all()
    assert [tuple(c) for c in codes] == [("rate_limit_wait", "info")]


def test_a_user_pause_is_not_lifted_by_the_breaker(engine):
    """After a breaker pause, a user pause wins: the automatic resume leaves it paused."""
    bid = create_batch(engine, template="tutoring", count=2)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE batch_jobs SET status='running' WHERE id='{bid}'")
    assert checkpoints.pause_for_breaker(engine, bid, BREAKER_PAUSE_REASON)
    pause_batch(engine, bid)
    assert checkpoints.resume_after_breaker(engine, bid) is False
    st = get_batch_status(engine, bid)
    assert (st["state"], st["pause_kind"]) == ("paused", "user")


def test_items_fail_after_their_attempt_limit(engine, sandbox):
    """A recoverable error on every call fails each item after item_max_attempts, and the batch says how to retry."""
    override_settings(item_max_attempts=2, retry_max_attempts=1, breaker_failure_threshold=100_000)
    sandbox.configure(force_status=500)
    bid = create_batch(engine, template="tutoring", count=3, turns=4)
    run_worker(engine, concurrency=3)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["failed"]) == ("failed", 3) and "--failed-only" in st["status_reason"]
    assert sandbox.stats()["messages_requests"] == 6
    with engine.connect() as conn:
        rows = conn.execute(sa.select(batch_items.c.attempts, batch_items.c.last_error_code)).all()
    assert {(r.attempts, r.last_error_code) for r in rows} == {(2, "server_error")}
    sandbox.configure(force_status=None)
    assert resume_batch(engine, bid, failed_only=True) == 3
    run_worker(engine)
    assert get_batch_status(engine, bid)["state"] == "completed"


def test_background_worker_starts_once_and_works_batches(engine, sandbox):
    """start_background_worker is idempotent (one thread per process) and completes queued batches."""
    first = start_background_worker(concurrency=4)
    again = start_background_worker()
    assert first["worker_id"] == again["worker_id"] and again["running"]
    assert sum(t.name == "batch-worker" for t in threading.enumerate()) == 1
    bid = create_batch(engine, template="travel_booking", count=6, turns=4)
    wait_for(lambda: get_batch_status(engine, bid)["state"] == "completed", 60, "background completion")
    assert background_worker_status()["items_done"] >= 6
    stop_background_worker()
    assert background_worker_status()["running"] is False


def test_cli_create_status_resume_and_export(engine, sandbox, capsys, tmp_path):
    """The CLI creates a batch, works it, reports JSON status, refuses a bad resume, and exports JSONL."""
    import json

    assert cli(["batch", "create", "--template", "tutoring", "--count", "5", "--turns", "4"]) == 0
    bid = capsys.readouterr().out.strip()
    assert cli(["worker", "--once", "--concurrency", "4"]) == 0
    assert cli(["batch", "status", bid, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["state"], st["done"], st["counts"]["failed"]) == ("completed", 5, 0)
    assert cli(["batch", "resume", bid]) == 2
    assert "finished" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse refuses it before the command runs
        cli(["batch", "create", "--template", "tutoring", "--count", "0"])
    assert refused.value.code == 2 and "from 1 to" in capsys.readouterr().err
    out = tmp_path / "train.jsonl"
    assert cli(["conversations", "export", "--out", str(out), "--batch", bid, "--status", "all"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5
    assert all(m["messages"][0]["role"] == "system" and [x["role"] for x in m["messages"][1:]] ==
               ["user", "assistant"] * 2 for m in lines)


@pytest.mark.postgres
def test_two_workers_on_postgres_share_one_batch(pg_databases, sandbox, monkeypatch):
    """Two worker processes on one Postgres database share a 300-item batch: both work, nothing is duplicated."""
    with postgres_engine(pg_databases, monkeypatch) as engine:
        bid = create_batch(engine, template="customer_support", count=300, turns=4, concurrency=6)
        env = {**os.environ, "STUDIO_RETRY_INSTANT": "true", "STUDIO_LEASE_DURATION_S": "5",
               "STUDIO_HEARTBEAT_INTERVAL_S": "1"}
        sandbox.configure(latency_ms=20)  # long enough that the second worker arrives while items remain
        procs = [subprocess.Popen([sys.executable, "-m", "core", "worker", "--once", "--concurrency", "6"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]
        for proc in procs:
            assert proc.wait(timeout=180) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        st = get_batch_status(engine, bid)
        assert (st["state"], st["done"]) == ("completed", 300)
        with engine.connect() as conn:
            indexes = [r[0] for r in conn.execute(sa.select(conversations.c.item_index))]
            by_worker = dict(conn.execute(sa.select(batch_items.c.claimed_by, sa.func.count())
                                          .group_by(batch_items.c.claimed_by)).all())
        assert sorted(indexes) == list(range(300))
        assert len(by_worker) == 2 and min(by_worker.values()) > 0, by_worker
