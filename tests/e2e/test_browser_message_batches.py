"""Message Batches mode in Chromium, with a real worker process killed mid-way.

An analyst picks "Message Batches (half price)" in the New batch form and launches; a separate
`python -m core worker` process submits the items in several remote batches and is killed with
SIGKILL once one remote batch is stored; the batch's detail still names its remote batches; a new
worker finishes it. The detail then shows every remote batch with its per-state counts and the cost
at the batch price, and the store holds one conversation per item, each asked no more often than
its errored results needed. The sandbox runs in this test's process, so the remote batches outlive
the worker as they would at Anthropic.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from browser_app import SHOTS, RunningApp, goto, migrated_data_dir, open_expander

from core.config import ROOT
from core.llm.pricing import price
from core.llm.sandbox import SandboxConfig, SandboxServer
from core.store import create_store_engine
from core.store.schema import batch_items, batch_jobs, conversations, message_batch_submissions, utcnow

pytestmark = pytest.mark.browser

ITEMS = 50
MAX_REQUESTS = 20  # a remote batch at most: 50 items go in at least three
# the settings the app and its worker processes share; the lease runs out soon after a kill
SETTINGS = {
    "STUDIO_UI_BACKGROUND_WORKER": "false",  # the worker is a process of its own, killed and restarted here
    "STUDIO_MESSAGE_BATCH_MAX_REQUESTS": str(MAX_REQUESTS),
    "STUDIO_MESSAGE_BATCH_POLL_INTERVAL_S": "0.5",
    "STUDIO_MESSAGE_BATCH_RESULTS_CHUNK": "5",
    "STUDIO_LEASE_DURATION_S": "3",
    "STUDIO_HEARTBEAT_INTERVAL_S": "0.5",
    "STUDIO_ITEM_MAX_ATTEMPTS": "10",  # errored results are retried; none may fail for want of attempts
    "STUDIO_RETRY_INSTANT": "true",
    "STUDIO_ALERT_POLL_INTERVAL_S": "3600",
}
# processing long enough that the kill lands while the remote batches are in flight
SANDBOX = SandboxConfig(seed=16, latency_ms=0, tokens_per_s=200_000.0, batch_processing_s=8.0,
                        batch_error_rate=0.1, batch_expired_rate=0.05)
WAIT_S = 240  # a loaded CI machine: worker start-up, lease, processing, results


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    srv = SandboxServer(SANDBOX)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory, sandbox) -> Iterator[RunningApp]:
    """The app on a fresh store, pointed at this test's sandbox, without a background worker."""
    running = RunningApp(migrated_data_dir(tmp_path_factory, "mb_app"), ANTHROPIC_BASE_URL=sandbox.base_url, **SETTINGS).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def store(app) -> Iterator[sa.Engine]:
    engine = create_store_engine(app.env["DATABASE_URL"])
    yield engine
    engine.dispose()


def _poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _worker(app: RunningApp, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "core", "worker", "--concurrency", "4", *args], cwd=ROOT,
                            env=app.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _submissions(store: sa.Engine, batch_id: str) -> list[Any]:
    t = message_batch_submissions
    with store.connect() as conn:
        return list(conn.execute(sa.select(t.c.remote_id, t.c.state, t.c.counts, t.c.request_count)
                                 .where(t.c.batch_id == batch_id).order_by(t.c.created_at, t.c.id)))


def _job(store: sa.Engine, batch_id: str) -> Any:
    with store.connect() as conn:
        return conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == batch_id)).mappings().one()


def _lease_free(store: sa.Engine, batch_id: str) -> bool:
    expires = _job(store, batch_id)["lease_expires_at"]
    return expires is None or expires < utcnow()


def _open_detail(page: Any, app: RunningApp) -> None:
    goto(page, app, "batches")
    details = page.get_by_role("button", name="Details").first
    details.wait_for(timeout=90_000)  # the live list draws after the form: late on a loaded machine
    details.click()
    page.get_by_text(re.compile(r"^Details: ")).first.wait_for(timeout=60_000)


def _grid_row(page: Any, remote_id: str) -> list[str]:
    """The cells of the remote-batches table's row for `remote_id` (the grid's accessible table holds them)."""
    row = page.locator("tr", has_text=remote_id).first
    row.wait_for(state="attached", timeout=60_000)
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def test_an_analyst_runs_a_message_batches_batch_through_a_killed_worker_and_sees_it_at_half_price(
        page, app, sandbox, store):
    """Mode radio, launch, kill -9 after a remote batch is stored, restart: remote batches, counts, batch price."""
    goto(page, app, "batches")
    open_expander(page, "New batch")
    count = page.get_by_role("spinbutton", name="Conversations")
    count.fill(str(ITEMS), timeout=90_000)  # editable once the page's first run is drawn
    count.press("Tab")
    page.get_by_text(re.compile(rf"^Estimate:.*\b{ITEMS} calls")).first.wait_for(timeout=60_000)
    online, batch = (page.get_by_test_id("stMetric").filter(has_text=label).first
                     for label in ("Online (one call per conversation)", "Message Batches (half price)"))
    online_est, batch_est = (float(re.search(r"\$([\d,.]+)", m.inner_text()).group(1).replace(",", ""))
                             for m in (online, batch))
    assert 0 < batch_est < online_est  # both estimates side by side, the batch one lower
    page.get_by_role("radiogroup", name="How to send").get_by_text("Message Batches (half price)").click()
    page.wait_for_timeout(1000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "message-batches-form.png"), full_page=True)
    page.get_by_role("button", name="Launch batch").click()
    page.get_by_text(re.compile(rf"Batch launched: {ITEMS} items")).first.wait_for(timeout=60_000)

    with store.connect() as conn:
        batch_id, mode = conn.execute(sa.select(batch_jobs.c.id, batch_jobs.c.mode)
                                      .order_by(batch_jobs.c.created_at.desc()).limit(1)).one()
    assert mode == "message_batches"

    first = _worker(app)
    try:
        _poll(lambda: any(s.remote_id for s in _submissions(store, batch_id)), WAIT_S,
              "the worker to store a remote batch id")
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    finally:
        _stop(first)
    stored = [s.remote_id for s in _submissions(store, batch_id) if s.remote_id]
    assert _job(store, batch_id)["status"] == "running"  # killed mid-way: nothing finished it

    _open_detail(page, app)  # the dead worker's remote batches are still there
    for remote_id in stored:
        page.get_by_text(remote_id).first.wait_for(state="attached", timeout=60_000)

    _poll(lambda: _lease_free(store, batch_id), 60, "the killed worker's lease to run out")
    second = _worker(app, "--once")
    try:
        _poll(lambda: _job(store, batch_id)["status"] == "completed", WAIT_S, "the restarted worker to finish")
        assert second.wait(WAIT_S) == 0, second.stderr.read().decode()[-3000:] if second.stderr else ""
    finally:
        _stop(second)

    subs = _submissions(store, batch_id)
    job = _job(store, batch_id)
    assert len(subs) >= ITEMS // MAX_REQUESTS + 1 and all(s.state == "collected" and s.remote_id for s in subs)
    assert set(stored) <= {s.remote_id for s in subs}  # the batches the killed worker made were collected

    _open_detail(page, app)
    page.get_by_text(f"Remote batches ({len(subs)})").first.wait_for(timeout=60_000)
    for sub in subs:
        cells = _grid_row(page, sub.remote_id)
        counts = [str(sub.counts[k]) for k in ("processing", "succeeded", "errored", "expired", "canceled")]
        assert cells[:8] == [sub.remote_id, "collected", str(sub.request_count), *counts], cells
    assert sum(s.counts["errored"] + s.counts["expired"] for s in subs) > 0  # the retried ones are counted too
    caption = page.get_by_text(re.compile(r"^Mode: Message Batches \(half price\) · cost \$")).first
    shown = float(re.search(r"cost \$([\d,.]+) at the Message Batches price", caption.inner_text()).group(1))
    usage = {"input_tokens": job["input_tokens"], "output_tokens": job["output_tokens"],
             "cache_read_input_tokens": job["cache_read_tokens"],
             "cache_creation_input_tokens": job["cache_creation_tokens"]}
    assert job["cache_creation_tokens"] == 0  # (the built-in's prompt is not cached: exactly half of online)
    assert shown == round(0.5 * price(job["model"], usage, mode="online").total, 4) > 0
    assert shown == round(price(job["model"], usage, mode="message_batches").total, 4)
    page.screenshot(path=str(SHOTS / "message-batches-detail.png"), full_page=True)

    with store.connect() as conn:
        statuses = dict(conn.execute(sa.select(batch_items.c.status, sa.func.count())
                                     .where(batch_items.c.batch_id == batch_id).group_by(batch_items.c.status)).all())
        indexes = sorted(conn.execute(sa.select(conversations.c.item_index)
                                      .where(conversations.c.batch_id == batch_id)).scalars())
        attempts = dict(conn.execute(sa.select(batch_items.c.item_index, batch_items.c.attempts)
                                     .where(batch_items.c.batch_id == batch_id)).all())
    assert statuses == {"done": ITEMS} and indexes == list(range(ITEMS))  # each item once, none lost
    sent = sandbox.batch_submissions()
    assert {i: sent.get(f"{batch_id}_{i}", 0) for i in range(ITEMS)} == {i: attempts[i] + 1 for i in range(ITEMS)}
