"""Helpers shared by the integration tests that run a batch worker against the sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.store.schema import batch_items

__all__ = ["UNLIMITED_RATE", "done_count", "wait_for"]

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


def done_count(engine: Engine, batch_id: str) -> int:
    """How many of the batch's items are done."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
            batch_items.c.batch_id == batch_id, batch_items.c.status == "done")).scalar_one()
