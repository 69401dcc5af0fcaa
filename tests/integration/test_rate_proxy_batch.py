"""A batch behind bench/rate_proxy.py (an independent token bucket with partial headers and faults) runs at the limit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request

import pytest

from core.batches.service import create_batch, get_batch_status
from core.batches.worker import BatchWorker
from core.config import ROOT, reload_settings
from core.llm.client import reset_client
from core.llm.sandbox import SandboxConfig, SandboxServer
from core.resilience import reset_breakers, reset_rate_limiters

RPM = 600
ITEMS = 60


@pytest.fixture
def proxied(monkeypatch):
    """A sandbox (no limits of its own) behind the proxy at RPM with partial headers and 10% faults."""
    srv = SandboxServer(SandboxConfig(seed=5, latency_ms=50, tokens_per_s=20_000))
    upstream = srv.start()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "rate_proxy.py"), "--upstream", upstream, "--rpm", str(RPM),
         "--headers", "partial", "--fault-rate", "0.1", "--seed", "3", "--idle-seconds", "30", "--max-seconds", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    for key, value in {"ANTHROPIC_BASE_URL": base_url, "STUDIO_RATE_LIMIT_RPM": str(RPM),
                       "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000", "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000",
                       "STUDIO_RETRY_AFTER_WHEN_INSTANT": "true", "STUDIO_WORKER_POLL_INTERVAL_S": "0.1"}.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    reset_client(), reset_breakers(), reset_rate_limiters()
    yield base_url
    reset_client(), reset_breakers(), reset_rate_limiters()
    proc.terminate()
    proc.wait(10)
    srv.stop()


def test_a_60_item_batch_behind_a_partial_header_proxy_finishes_within_twice_the_ideal_time(engine, proxied):
    """Every item is done, no request is refused for the limit, and the run takes < 2x charged requests / limit."""
    batch_id = create_batch(engine, template="customer_support", count=ITEMS, concurrency=8)
    started = time.monotonic()
    assert asyncio.run(BatchWorker(engine, concurrency=8).run(once=True)) == 0
    elapsed = time.monotonic() - started
    with urllib.request.urlopen(f"{proxied}/_proxy/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    assert get_batch_status(engine, batch_id)["done"] == ITEMS
    ideal = stats["accepted"] / (RPM / 60)
    assert stats["fault_429"] + stats["fault_500"] + stats["fault_529"] + stats["fault_drop"] > 0  # faults were there
    assert stats["limit_429"] == 0
    assert elapsed < 2 * ideal, f"{elapsed:.1f} s for an ideal of {ideal:.1f} s"
