"""Worker crashes on both engines: kill -9 at many moments loses nothing and duplicates nothing.

Each test drives real `python -m core worker` processes against a real sandbox server
(10% transient faults) and the test's database. The harness's crash hook (crash_hook.py,
injected by the test, not a setting of the app) makes a worker die between its k-th model
reply and that item's commit, the worst moment there is.
"""

from __future__ import annotations

import signal
import time

import sqlalchemy as sa
from batch_support import done_count, run_worker_here, start_worker, wait_for, worker_env

from core.batches.service import create_batch, get_batch_status
from core.store.schema import batch_items, batch_jobs, conversations, utcnow

COUNT = 200


SANDBOX = {"seed": 11, "latency_ms": 0, "tokens_per_s": 200_000.0, "fault_rate": 0.1, "retry_after_s": 0.0}


def assert_exactly_once(engine, batch_id: str, count: int) -> None:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(conversations.c.item_index).where(conversations.c.batch_id == batch_id)).all()
        linked = conn.execute(sa.select(sa.func.count()).select_from(
            batch_items.join(conversations, batch_items.c.conversation_id == conversations.c.id)).where(
            batch_items.c.batch_id == batch_id)).scalar_one()
    indexes = [r.item_index for r in rows]
    assert len(indexes) == count, f"{len(indexes)} conversation rows for {count} items"
    assert sorted(indexes) == list(range(count)), "missing or duplicated item indexes"
    assert linked == count


def test_kill_9_at_many_moments_loses_and_duplicates_nothing(engine, sandbox, monkeypatch):
    """Six workers killed at six moments (three between reply and commit): all 200 items done exactly once."""
    srv, url = sandbox, sandbox.base_url
    batch_id = create_batch(engine, template="customer_support", count=COUNT, turns=4, concurrency=8)
    env = worker_env(url)
    kills: list[str] = []

    def crash_after_reply(k: int) -> None:
        before = done_count(engine, batch_id)
        proc = start_worker(env, after_replies=k)
        assert proc.wait(timeout=60) == 137, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        kills.append(f"after reply {k} (done {before} -> {done_count(engine, batch_id)})")

    def kill_when_done(extra: int) -> None:
        target = done_count(engine, batch_id) + extra
        proc = start_worker(env)
        wait_for(lambda: done_count(engine, batch_id) >= target or proc.poll() is not None, 60, f"{target} done")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills.append(f"kill -9 at {done_count(engine, batch_id)} done")

    def kill_while_starting() -> None:
        proc = start_worker(env)
        time.sleep(0.3)  # still importing or migrating: no lease yet, or just taken
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills.append("kill -9 while starting")

    crash_after_reply(1)          # first reply of a fresh batch, before any commit
    kill_when_done(25)
    crash_after_reply(9)          # mid-flight: eight commits behind it, several items in flight
    kill_while_starting()
    kill_when_done(30)
    crash_after_reply(20)
    assert len(kills) == 6 and done_count(engine, batch_id) < COUNT

    run_worker_here(monkeypatch, env)
    status = get_batch_status(engine, batch_id)
    assert status["state"] == "completed", (status, kills)
    assert (status["done"], status["failed"], status["pending"], status["running"]) == (COUNT, 0, 0, 0)
    assert_exactly_once(engine, batch_id, COUNT)
    stats = srv.stats()
    assert stats["faults_injected"] >= 0.05 * stats["messages_requests"] > 0  # the 10% faults were real
    with engine.connect() as conn:
        lease = conn.execute(sa.select(batch_jobs.c.lease_owner).where(batch_jobs.c.id == batch_id)).scalar()
    assert lease is None


def test_sigterm_releases_the_lease_at_once(engine, sandbox, monkeypatch):
    """A SIGTERM'd worker gives its lease and items back at once; the next worker starts without waiting."""
    srv, url = sandbox, sandbox.base_url
    srv.configure(fault_rate=0.0, latency_ms=150)
    batch_id = create_batch(engine, template="tutoring", count=30, turns=4, concurrency=8)
    env = worker_env(url, STUDIO_LEASE_DURATION_S="600", STUDIO_HEARTBEAT_INTERVAL_S="5",
                     STUDIO_WORKER_SHUTDOWN_GRACE_S="0.5")
    first = start_worker(env, "--concurrency", "2")
    wait_for(lambda: done_count(engine, batch_id) >= 3, 60, "first commits")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    with engine.connect() as conn:
        row = conn.execute(sa.select(batch_jobs.c.lease_owner, batch_jobs.c.status).where(
            batch_jobs.c.id == batch_id)).one()
        running = conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
            batch_items.c.batch_id == batch_id, batch_items.c.status == "running")).scalar_one()
    assert row.lease_owner is None and row.status == "running" and running == 0
    assert done_count(engine, batch_id) < 30
    srv.configure(latency_ms=0)
    # with a 600 s lease, only a released lease lets the successor claim the batch as its owner now
    successor = run_worker_here(monkeypatch, env)
    assert successor.stats.batches_claimed == 1
    assert get_batch_status(engine, batch_id)["state"] == "completed"
    assert_exactly_once(engine, batch_id, 30)


def test_worker_deaths_do_not_fail_the_items_they_had_in_flight(engine, sandbox, monkeypatch):
    """Two workers die with items in flight (one own attempt allowed per item): every item still completes."""
    srv, url = sandbox, sandbox.base_url
    srv.configure(fault_rate=0.0, latency_ms=200)
    batch_id = create_batch(engine, template="tutoring", count=8, turns=4, concurrency=4)
    env = worker_env(url, STUDIO_ITEM_MAX_ATTEMPTS="1")  # a death that spent it would fail the item at once
    for _ in range(2):
        proc = start_worker(env, "--concurrency", "4", after_replies=1)  # dies at its first reply, 3 in flight
        assert proc.wait(timeout=60) == 137, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    # a `--once` worker started while the dead one's lease still runs finds nothing to claim and
    # returns; the next process start usually outlasts the 1 s lease, this in-process one may not
    wait_for(lambda: lease_has_run_out(engine, batch_id), 30, "the dead worker's lease to run out")
    run_worker_here(monkeypatch, env, concurrency=4)
    status = get_batch_status(engine, batch_id)
    assert (status["state"], status["done"], status["failed"]) == ("completed", 8, 0), status
    assert_exactly_once(engine, batch_id, 8)
    with engine.connect() as conn:
        lost = conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
            batch_items.c.batch_id == batch_id, batch_items.c.lost_attempts > 0)).scalar_one()
    assert lost >= 4  # the deaths were real and took items with them


def test_an_item_that_kills_every_worker_is_failed_and_its_bystanders_are_not(engine, sandbox, monkeypatch, tmp_path):
    """A poison item kills each worker that takes it: it runs alone after the first death and fails; the rest are done."""
    from core.batches.csv_import import parse_csv

    srv, url = sandbox, sandbox.base_url
    srv.configure(fault_rate=0.0, latency_ms=200)
    personas = ["a student", "a parent", "poison", "a teacher", "a tutor", "a coach"]
    rows = parse_csv(("persona,emotion,topic\n" + "".join(f"{p},calm,fractions\n" for p in personas)).encode())
    batch_id = create_batch(engine, template="tutoring", rows=rows, turns=4, concurrency=4)
    env = worker_env(url, STUDIO_ITEM_MAX_LOST_ATTEMPTS="2")
    deaths = 0
    while deaths < 5:
        proc = start_worker(env, "--concurrency", "4", poison_persona="poison")
        code = proc.wait(timeout=60)
        if code == 0:
            break
        assert code == 137, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        deaths += 1
    assert deaths == 2  # once in company, once alone: then it is failed, not claimed again

    status = get_batch_status(engine, batch_id)
    assert (status["state"], status["done"], status["failed"]) == ("failed", 5, 1), status
    with engine.connect() as conn:
        failed = conn.execute(sa.select(batch_items.c.item_index, batch_items.c.last_error_code, batch_items.c.attempts)
                              .where(batch_items.c.batch_id == batch_id, batch_items.c.status == "failed")).one()
    assert tuple(failed) == (2, "worker_lost", 0)


def lease_has_run_out(engine, batch_id: str) -> bool:
    with engine.connect() as conn:
        expires = conn.execute(sa.select(batch_jobs.c.lease_expires_at).where(batch_jobs.c.id == batch_id)).scalar()
    return expires is None or expires < utcnow()
