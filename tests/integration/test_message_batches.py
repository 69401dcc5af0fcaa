"""Message Batches mode against the real sandbox over HTTP, on both engines.

Every valid item is done exactly once, across remote batches split by the limits, with errored,
expired and invalid shares, with kill -9 of the worker at each step (crash_hook's --remote-step),
a cancel during processing, and a spend cap reached and then raised.
"""

from __future__ import annotations

import asyncio
import json
import threading

import sqlalchemy as sa
from batch_support import UNLIMITED_RATE, start_worker, wait_for, worker_env
from cli_runner import run_cli

from core.batches.service import (
    cancel_batch,
    create_batch,
    get_batch_status,
    pause_batch,
    resume_batch,
    set_budget,
)
from core.batches.worker import BatchWorker
from core.config import reload_settings
from core.store.schema import batch_items, batch_jobs, conversations, message_batch_submissions, utcnow

FAST = {
    **UNLIMITED_RATE,
    "STUDIO_WORKER_POLL_INTERVAL_S": "0.1",
    "STUDIO_HEARTBEAT_INTERVAL_S": "0.3",
    "STUDIO_MESSAGE_BATCH_POLL_INTERVAL_S": "0.1",
    "STUDIO_MESSAGE_BATCH_MAX_REQUESTS": "10",
    "STUDIO_MESSAGE_BATCH_RESULTS_CHUNK": "4",
    "STUDIO_ITEM_MAX_ATTEMPTS": "10",
}

SANDBOX = {"seed": 5, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0, "batch_processing_s": 0.2}
SANDBOX_ENV = FAST


def run_worker(engine) -> BatchWorker:
    worker = BatchWorker(engine, concurrency=4)
    assert asyncio.run(worker.run(once=True)) == 0
    return worker


def items(engine, batch_id: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(
            batch_items.c.item_index, batch_items.c.status, batch_items.c.attempts, batch_items.c.last_error,
            batch_items.c.last_error_code).where(batch_items.c.batch_id == batch_id)
            .order_by(batch_items.c.item_index)).mappings()]


def conversation_indexes(engine, batch_id: str) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(conversations.c.item_index).where(
            conversations.c.batch_id == batch_id)).scalars())


def assert_each_request_needed(sandbox, batch_id: str, rows: list[dict]) -> None:
    """Each item was submitted once per failed attempt, plus once for a done one: no more."""
    sent = sandbox.batch_submissions()
    for row in rows:
        times = sent.get(f"{batch_id}_{row['item_index']}", 0)
        needed = row["attempts"] + (1 if row["status"] == "done" else 0)
        assert times == needed, (row, times)


def test_a_message_batches_batch_completes_each_item_exactly_once_in_split_remote_batches(engine, sandbox):
    """25 items, at most 10 a remote batch: three remote batches, every item done once, at the batch price."""
    bid = create_batch(engine, template="tutoring", count=25, turns=4, mode="message_batches")
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["failed"], st["mode"]) == ("completed", 25, 0, "message_batches")
    assert conversation_indexes(engine, bid) == list(range(25))
    subs = st["submissions"]
    assert [s["request_count"] for s in subs] == [10, 10, 5] and all(s["state"] == "collected" for s in subs)
    assert all(s["remote_id"].startswith("msgbatch_") for s in subs)
    assert sum(s["counts"]["succeeded"] for s in subs) == 25
    assert sandbox.stats()["batches_created"] == 3 and sandbox.stats().get("messages_requests", 0) == 0
    with engine.connect() as conn:
        modes = set(conn.execute(sa.select(conversations.c.mode).where(conversations.c.batch_id == bid)).scalars())
    assert modes == {"message_batches"} and st["cost_usd"] > 0


def test_errored_expired_and_invalid_requests_are_retried_or_failed_with_their_reason(engine, sandbox):
    """Retryable errors and expiries go into the next remote batch; invalid requests fail naming the error."""
    sandbox.configure(batch_error_rate=0.15, batch_expired_rate=0.1, batch_invalid_rate=0.15)
    bid = create_batch(engine, template="tutoring", count=40, turns=4, mode="message_batches")
    run_worker(engine)
    rows = items(engine, bid)
    done = [r["item_index"] for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(done) + len(failed) == 40 and failed, rows
    assert all("invalid_request_error" in r["last_error"] and r["last_error_code"] == "batch_request_errored"
               for r in failed)
    assert conversation_indexes(engine, bid) == done
    assert any(r["attempts"] > 0 for r in rows if r["status"] == "done")  # some were requeued and then succeeded
    assert_each_request_needed(sandbox, bid, rows)
    st = get_batch_status(engine, bid)
    assert st["state"] == "failed" and st["failed"] == len(failed)


def test_kill_9_at_each_step_submits_nothing_twice_and_loses_nothing(engine, sandbox):
    """Killed before create, after create before the id is stored, while polling and half-way through results."""
    sandbox.configure(batch_error_rate=0.1)
    bid = create_batch(engine, template="tutoring", count=20, turns=4, mode="message_batches")
    env = worker_env(sandbox.base_url, **FAST)
    for step in ("before_create", "after_create", "polling", "results"):
        proc = start_worker(env, remote_step=step)
        assert proc.wait(timeout=90) == 137, (step, proc.stderr.read().decode()[-3000:] if proc.stderr else "")
        wait_for(lambda: _lease_free(engine, bid), 10, f"the lease of the worker killed at {step} to run out")
    run_worker(engine)
    st = get_batch_status(engine, bid)
    rows = items(engine, bid)
    assert (st["state"], st["done"]) == ("completed", 20), (st, rows)
    assert conversation_indexes(engine, bid) == list(range(20))
    assert_each_request_needed(sandbox, bid, rows)
    stored = [s["remote_id"] for s in st["submissions"]]
    assert None not in stored and len(set(stored)) == sandbox.stats()["batches_created"]  # no remote batch orphaned
    with engine.connect() as conn:
        linked = conn.execute(sa.select(sa.func.count()).select_from(batch_items.join(
            conversations, batch_items.c.conversation_id == conversations.c.id)).where(
            batch_items.c.batch_id == bid)).scalar_one()
    assert linked == 20


def _lease_free(engine, batch_id: str) -> bool:
    with engine.connect() as conn:
        expires = conn.execute(sa.select(batch_jobs.c.lease_expires_at).where(batch_jobs.c.id == batch_id)).scalar()
    return expires is None or expires < utcnow()


def test_cancel_during_processing_cancels_the_remote_batches_and_keeps_what_succeeded(engine, sandbox):
    """A cancel while remote batches are processing cancels them; no item is left running or submitted again."""
    sandbox.configure(batch_processing_s=30.0)
    bid = create_batch(engine, template="tutoring", count=15, turns=4, mode="message_batches")
    worker = BatchWorker(engine, concurrency=4)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(once=True)), daemon=True)
    thread.start()
    wait_for(lambda: _remote_states(engine, bid) == ["in_progress", "in_progress"], 30, "two remote batches in progress")
    cancel_batch(engine, bid)
    thread.join(timeout=60)
    assert not thread.is_alive()
    st = get_batch_status(engine, bid)
    assert st["state"] == "cancelled" and st["running"] == 0 and st["pending"] == 0
    assert _remote_states(engine, bid) == ["collected", "collected"]
    assert sum(s["counts"]["canceled"] for s in st["submissions"]) == 15 - st["done"] > 0
    assert sandbox.stats()["batches_created"] == 2


def _remote_states(engine, batch_id: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(message_batch_submissions.c.state).where(
            message_batch_submissions.c.batch_id == batch_id).order_by(message_batch_submissions.c.created_at))
            .scalars())


def test_a_reached_budget_pauses_and_resume_with_a_higher_one_completes(engine, sandbox):
    """Message Batches mode: the cap stops new submissions with "budget reached"; a raised cap finishes the batch."""
    bid = create_batch(engine, template="tutoring", count=30, turns=4, mode="message_batches", budget_usd=0.004)
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert st["state"] == "paused" and st["pause_kind"] == "budget", st
    assert st["status_reason"].startswith("budget reached: $") and "of $0.00" in st["status_reason"]
    assert 0 < st["done"] < 30 and st["cost_usd"] <= 0.004
    set_budget(engine, bid, 10.0)
    resume_batch(engine, bid)
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["budget_usd"]) == ("completed", 30, 10.0)
    assert conversation_indexes(engine, bid) == list(range(30))


def test_online_mode_keeps_to_its_budget_too(engine, sandbox):
    """An online batch pauses before its committed plus in-flight cost passes the cap, and completes once raised."""
    bid = create_batch(engine, template="tutoring", count=20, turns=4, concurrency=4, budget_usd=0.006)
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert st["state"] == "paused" and st["pause_kind"] == "budget" and 0 < st["done"] < 20, st
    assert st["cost_usd"] <= 0.006 + 4 * st["cost_usd"] / st["done"]  # at most the items already in flight over
    set_budget(engine, bid, 10.0)
    resume_batch(engine, bid)
    run_worker(engine)
    assert get_batch_status(engine, bid)["state"] == "completed"
    assert conversation_indexes(engine, bid) == list(range(20))


def test_the_batch_price_is_half_the_online_price_of_the_same_usage(engine, sandbox):
    """The same items in both modes: the batch's cost per token is half the online one."""
    online = create_batch(engine, template="tutoring", count=6, turns=4)
    remote = create_batch(engine, template="tutoring", count=6, turns=4, mode="message_batches")
    run_worker(engine)
    a, b = get_batch_status(engine, online), get_batch_status(engine, remote)
    assert a["state"] == b["state"] == "completed"
    per_token = a["cost_usd"] / a["tokens"], b["cost_usd"] / b["tokens"]
    assert abs(per_token[1] / per_token[0] - 0.5) < 0.05, (a, b)



def test_a_job_is_split_by_the_byte_limit_too(engine, sandbox, monkeypatch):
    """With room for about three requests' bytes, 8 items go in remote batches no larger than the limit."""
    monkeypatch.setenv("STUDIO_MESSAGE_BATCH_MAX_BYTES", "4500")
    reload_settings()
    bid = create_batch(engine, template="tutoring", count=8, turns=4, mode="message_batches")
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"]) == ("completed", 8)
    assert len(st["submissions"]) >= 3 and all(s["request_bytes"] <= 4500 for s in st["submissions"])
    assert sum(s["request_count"] for s in st["submissions"]) == 8


def test_a_remote_batchs_recorded_bytes_are_the_bytes_its_create_sends(engine, sandbox, monkeypatch):
    """create streams the requests' JSON as encoded while building: valid, the items' requests, as long as the row says."""
    import core.batches.message_batches as mb

    sent: list[tuple[int, bytes]] = []
    real = mb._remote_create

    async def recording(sdk, body):
        sent.append((body.size, b"".join([chunk async for chunk in body.chunks()])))
        return await real(sdk, body)

    monkeypatch.setattr(mb, "_remote_create", recording)
    bid = create_batch(engine, template="tutoring", count=5, turns=4, mode="message_batches")
    run_worker(engine)
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"]) == ("completed", 5)
    [(size, raw)] = sent
    assert size == len(raw) == st["submissions"][0]["request_bytes"]
    assert [r["custom_id"] for r in json.loads(raw)["requests"]] == [f"{bid}_{i}" for i in range(5)]


def test_pause_stops_new_submissions_but_collects_those_in_flight(engine, sandbox):
    """Paused with one remote batch in flight: its results are saved, nothing more is submitted; Resume finishes."""
    sandbox.configure(batch_processing_s=1.0)
    bid = create_batch(engine, template="tutoring", count=15, turns=4, mode="message_batches")
    worker = BatchWorker(engine, concurrency=4)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(once=True)), daemon=True)
    thread.start()
    wait_for(lambda: _remote_states(engine, bid)[:1] == ["in_progress"], 30, "the first remote batch in progress")
    pause_batch(engine, bid)
    thread.join(timeout=60)
    assert not thread.is_alive()
    st = get_batch_status(engine, bid)
    created = sandbox.stats()["batches_created"]
    assert st["state"] == "paused" and st["running"] == 0 and st["done"] == sum(
        s["counts"]["succeeded"] for s in st["submissions"]) > 0
    assert set(_remote_states(engine, bid)) == {"collected"} and created == len(st["submissions"]) < 3
    resume_batch(engine, bid)
    run_worker(engine)
    assert get_batch_status(engine, bid)["state"] == "completed"
    assert conversation_indexes(engine, bid) == list(range(15))


def test_the_cli_creates_a_message_batches_batch_with_a_budget_and_shows_its_remote_batches(engine, sandbox):
    """`batch create --mode message_batches --max-cost`, then `batch status --json` shows mode, budget, submissions."""
    made = run_cli(["batch", "create", "--template", "tutoring", "--count", "4", "--turns", "4",
                    "--mode", "message_batches", "--max-cost", "5"])
    assert made.returncode == 0, made.stderr
    bid = made.stdout.strip()
    run_worker(engine)
    shown = run_cli(["batch", "status", bid, "--json"])
    status = json.loads(shown.stdout)
    assert (status["mode"], status["budget_usd"], status["state"]) == ("message_batches", 5.0, "completed")
    [sub] = status["submissions"]
    assert sub["remote_id"].startswith("msgbatch_") and sub["counts"]["succeeded"] == 4
    text = run_cli(["batch", "status", bid[:8]]).stdout  # the short id the pages show is enough
    assert "mode message_batches  budget $5.00" in text and sub["remote_id"] in text
    assert f"{status['final_throughput_per_min']} items/min over the run" in text and "ETA" not in text
    refused = run_cli(["batch", "create", "--template", "tutoring", "--count", "4", "--max-cost", "-1"])
    assert refused.returncode == 2 and "--max-cost" in refused.stderr
    resumed = run_cli(["batch", "resume", bid, "--max-cost", "9"])
    assert resumed.returncode == 2 and "finished" in resumed.stderr  # a finished batch: refused, budget kept
    assert get_batch_status(engine, bid)["budget_usd"] == 5.0


def test_a_worker_works_other_batches_while_its_remote_batches_process(engine, sandbox, monkeypatch):
    """The Message Batches batch is parked until its next poll; an online batch made after it finishes first."""
    monkeypatch.setenv("STUDIO_MESSAGE_BATCH_POLL_INTERVAL_S", "1.0")
    reload_settings()
    sandbox.configure(batch_processing_s=3.0)
    remote = create_batch(engine, template="tutoring", count=6, turns=4, mode="message_batches")
    online = create_batch(engine, template="tutoring", count=6, turns=4)
    run_worker(engine)  # --once: waits for the parked batch instead of exiting with it in flight
    a, b = get_batch_status(engine, remote), get_batch_status(engine, online)
    assert a["state"] == b["state"] == "completed" and a["lease_owner"] is None
    assert b["finished_at"] < a["finished_at"]
    assert sandbox.stats()["batches_created"] == 1


def test_a_judged_message_batches_batch_has_each_result_judged_at_the_online_price(engine, sandbox):
    """--judge on a batch-mode batch: each committed result carries its judgement; the judge's calls are
    online requests (one per conversation), their cost kept apart from the half-price generation cost."""
    bid = create_batch(engine, template="tutoring", count=6, turns=4, mode="message_batches", judge=True)
    online_before = sandbox.stats()["messages_requests"]
    run_worker(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(conversations.c.judge_status, conversations.c.judge_cost_usd,
                                      conversations.c.cost_usd).where(conversations.c.batch_id == bid)).all()
        judge_cost = conn.execute(sa.select(batch_jobs.c.judge_cost_usd).where(batch_jobs.c.id == bid)).scalar_one()
    assert len(rows) == 6 and all(r.judge_status == "ok" and r.judge_cost_usd > 0 for r in rows)
    assert judge_cost == sum(r.judge_cost_usd for r in rows)
    assert sandbox.stats()["messages_requests"] - online_before == 6
