"""The in-app worker's status, as the sidebar and Home show it."""

from __future__ import annotations

from core.batches import background
from core.batches.background import background_worker_status
from core.batches.worker import BatchWorker


def test_the_workers_last_error_is_shown_redacted(monkeypatch, tmp_path):
    """An upstream message that echoes a key reaches the status without the key."""
    from core.store import create_store_engine

    key = "sk-ant-api03-" + "Q" * 40
    worker = BatchWorker(create_store_engine(f"sqlite:///{tmp_path / 'w.db'}"), worker_id="w1")
    worker.stats.last_error = f"upstream said: invalid x-api-key {key}"
    monkeypatch.setattr(background, "_bg_worker", worker)
    status = background_worker_status()
    assert status["last_error"].startswith("upstream said: invalid x-api-key")
    assert key not in status["last_error"] and "[REDACTED]" in status["last_error"]
