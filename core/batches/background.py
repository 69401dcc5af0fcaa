"""The in-app batch worker: one BatchWorker on a daemon thread per server process, and its status.

The app starts it from the page frame (settings.ui_background_worker); `python -m core worker`
runs BatchWorker in its own process instead. Either way the batches are shared through the store.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from core.batches.worker import BatchWorker
from core.errorlog import record
from core.errors import classify
from core.redact import redact_text

__all__ = ["background_worker_status", "start_background_worker", "stop_background_worker"]

_bg_lock = threading.Lock()
_bg_thread: threading.Thread | None = None
_bg_worker: BatchWorker | None = None
_bg_error: str | None = None


def start_background_worker(*, concurrency: int | None = None) -> dict[str, Any]:
    """Start the in-app worker thread once per process (idempotent); returns its status."""
    global _bg_thread, _bg_worker, _bg_error
    with _bg_lock:
        if _bg_thread is None or not _bg_thread.is_alive():
            worker = BatchWorker(concurrency=concurrency)

            def _main() -> None:
                global _bg_error
                try:
                    asyncio.run(worker.run())
                except Exception as exc:  # noqa: BLE001 - the thread must not die silently
                    _bg_error = classify(exc).message
                    record(exc, component="batch_worker",
                           context={"worker": worker.worker_id, "step": "background_worker"})

            _bg_worker, _bg_error = worker, None
            _bg_thread = threading.Thread(target=_main, name="batch-worker", daemon=True)
            _bg_thread.start()
    return background_worker_status()


def stop_background_worker(timeout: float = 10.0) -> None:
    """Ask the in-app worker to stop and wait for it (tests; the server's exit kills the daemon thread)."""
    global _bg_thread
    with _bg_lock:
        thread, worker = _bg_thread, _bg_worker
    if worker is not None:
        worker.request_stop()
    if thread is not None:
        thread.join(timeout)
    with _bg_lock:
        if _bg_thread is thread:
            _bg_thread = None


def background_worker_status() -> dict[str, Any]:
    """running, worker_id, state, current_batch, items_done, items_failed, started_at, last_error."""
    with _bg_lock:
        thread, worker, error = _bg_thread, _bg_worker, _bg_error
    if worker is None:
        return {"running": False, "worker_id": None, "state": "not started", "current_batch": None,
                "items_done": 0, "items_failed": 0, "started_at": None, "last_error": error}
    s = worker.stats
    last_error = error or s.last_error
    # the raw message of the last classified error: upstream text that can carry a key
    return {"running": bool(thread and thread.is_alive()), "worker_id": s.worker_id, "state": s.state,
            "current_batch": s.current_batch, "items_done": s.items_done, "items_failed": s.items_failed,
            "started_at": s.started_at, "last_error": None if last_error is None else redact_text(last_error)}
