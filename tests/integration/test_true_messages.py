"""Messages and states that are true: no promise nothing keeps, keys named where they live, states that match counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE

from core import recovery
from core.batches import checkpoints
from core.batches.service import create_batch, get_batch_status
from core.batches.states import breaker_pause_reason
from core.batches.worker import BatchWorker
from core.config import override_settings
from core.drafts import start_draft
from core.errorlog import flush
from core.errors import APIError, NetworkError
from core.generation import GenerationParams, template_names
from core.llm.client import ClaudeClient
from core.llm.loops import run_sync
from core.store.schema import batch_items, batch_jobs, error_logs, utcnow

SANDBOX = {"seed": 3, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = {**UNLIMITED_RATE, "STUDIO_WORKER_POLL_INTERVAL_S": "0.1", "STUDIO_HEARTBEAT_INTERVAL_S": "0.3"}


def _call(client: ClaudeClient) -> None:
    run_sync(client.acomplete(system="You write conversations.", messages=[{"role": "user", "content": "Hello"}],
                              component="test.messages"))


def _logged(engine, code: str) -> list[sa.Row]:
    flush()
    with engine.connect() as conn:
        return list(conn.execute(sa.select(error_logs.c.component, error_logs.c.user_message, error_logs.c.attempt)
                                 .where(error_logs.c.error_code == code).order_by(error_logs.c.id)))


def test_a_call_that_used_up_its_retries_says_it_gave_up(engine, sandbox):
    """After the last attempt the error and its log row say it gave up after N attempts, not that it will be retried."""
    override_settings(retry_max_attempts=3, breaker_failure_threshold=1_000)
    sandbox.configure(force_status=500)
    with pytest.raises(APIError) as info:
        _call(ClaudeClient(provider="endpoint", base_url=sandbox.base_url, api_key="sk-test"))
    assert "Gave up after 3 attempts." in info.value.user_message
    assert "will be retried" not in info.value.user_message
    rows = _logged(engine, "server_error")
    assert [r.attempt for r in rows] == [1, 2, 3]
    assert "will be retried" in rows[0].user_message  # true then: two attempts were left
    assert "will be retried" not in rows[-1].user_message and "Gave up after 3 attempts" in rows[-1].user_message


def test_a_rejected_key_says_where_the_key_comes_from(engine, sandbox):
    """A 401 names ANTHROPIC_API_KEY and where it is set, and sends nobody to a Settings field."""
    sandbox.configure(api_key_required="sk-the-right-one")
    with pytest.raises(APIError) as info:
        _call(ClaudeClient(provider="endpoint", base_url=sandbox.base_url, api_key="sk-a-wrong-one"))
    message = info.value.user_message
    assert info.value.code == "authentication_failed"
    assert "ANTHROPIC_API_KEY" in message and ".streamlit/secrets.toml" in message and "environment" in message
    assert "in Settings" not in message and "chaos" not in message


def test_a_401_the_chaos_switch_forced_says_the_switch_caused_it(engine, sandbox):
    """A 401 the sandbox's fault injection made up blames the chaos switch, not the key."""
    sandbox.configure(force_status=401)
    with pytest.raises(APIError) as info:
        _call(ClaudeClient(provider="endpoint", base_url=sandbox.base_url, api_key="sk-test"))
    assert "chaos switch" in info.value.user_message and "Settings → Chaos switch" in info.value.user_message
    assert "ANTHROPIC_API_KEY" not in info.value.user_message


def test_a_draft_stopped_by_an_error_says_it_stopped(engine):
    """A failed draft's message says the generation stopped and the text is kept, with no promise of a retry."""
    params = GenerationParams(template=template_names()[0], persona="a student", emotion="calm", topic="fractions",
                              turns=4)
    draft = start_draft(engine, params)
    draft.fail(NetworkError("cut", user_message="Could not reach the model service. It will be retried."))
    assert "will be retried" not in (draft.error_message or "")
    assert "stopped" in (draft.error_message or "") and "Resume" in (draft.error_message or "")


def test_a_batch_with_a_rejected_key_is_stopped_with_its_items_not_started_and_logged_once(engine, sandbox):
    """A real 401 shows "stopped: key rejected; 20 items not started" (not "failed" with 0 failed), one log row."""
    sandbox.configure(api_key_required="sk-the-right-one")
    override_settings(anthropic_api_key="sk-a-wrong-one")
    bid = create_batch(engine, template="tutoring", count=20, turns=4, concurrency=1)
    assert asyncio.run(BatchWorker(engine, concurrency=1).run(once=True)) == 0
    st = get_batch_status(engine, bid)
    assert (st["state"], st["failed"], st["pending"]) == ("failed", 0, 20)
    assert st["shown_state"] == "stopped"
    assert st["shown_reason"].startswith("stopped: key rejected; 20 items not started.")
    assert "ANTHROPIC_API_KEY" in st["shown_reason"]
    rows = _logged(engine, "authentication_failed")
    assert len(rows) == 1, [tuple(r) for r in rows]


def test_a_breaker_paused_batch_counts_down_to_its_next_try_and_needs_no_action(engine):
    """Paused by the breaker: "paused automatically — …; next try in N s; no action needed"."""
    bid = create_batch(engine, template="tutoring", count=3, turns=4)
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(status="running"))
    assert checkpoints.pause_for_breaker(engine, bid, breaker_pause_reason(utcnow() + timedelta(seconds=30)))
    st = get_batch_status(engine, bid)
    assert st["shown_state"] == "paused automatically"
    assert st["shown_reason"].startswith("paused automatically — the model service is failing; next try in ")
    seconds = int(st["shown_reason"].split("next try in ")[1].split(" s")[0])
    assert 25 <= seconds <= 30 and st["shown_reason"].endswith("; no action needed")


def test_a_running_batch_with_a_late_lease_but_moving_items_is_not_interrupted(engine):
    """A late heartbeat alone is not an interruption; Recovery and Home count the same batches as interrupted."""
    bid = create_batch(engine, template="tutoring", count=3, turns=4)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(
            status="running", lease_owner="w1", lease_expires_at=now - timedelta(seconds=5)))
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid).values(updated_at=now))
    assert get_batch_status(engine, bid)["interrupted"] is False
    assert get_batch_status(engine, bid)["shown_state"] == "running"
    assert recovery.find_interrupted_batches(engine) == []
    assert recovery.needs_attention(engine)["interrupted_batches"] == 0

    with engine.begin() as conn:  # nothing has moved for longer than a lease: the worker is gone
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid).values(
            updated_at=now - timedelta(minutes=10)))
    assert get_batch_status(engine, bid)["shown_state"] == "interrupted"
    assert [f["id"] for f in recovery.find_interrupted_batches(engine)] == [bid]
    found = recovery.scan(engine)
    assert recovery.needs_attention(engine) == {k: len(found[k]) for k in recovery.needs_attention(engine)}
