"""Batches: create and control them (service), work them (worker), parse uploads (csv_import).

Pages and the CLI call the service functions; the worker runs in the app (one background
thread per server process, `background`) or as `python -m core worker` processes.
"""

from core.batches.background import background_worker_status, start_background_worker, stop_background_worker
from core.batches.csv_import import parse_csv, read_upload
from core.batches.service import (
    cancel_batch,
    create_batch,
    estimate,
    failed_items,
    get_batch_status,
    list_batches,
    pause_batch,
    resume_batch,
    resume_history,
)
from core.batches.worker import BatchWorker

__all__ = [
    "BatchWorker",
    "background_worker_status",
    "cancel_batch",
    "create_batch",
    "estimate",
    "failed_items",
    "get_batch_status",
    "list_batches",
    "parse_csv",
    "pause_batch",
    "read_upload",
    "resume_batch",
    "resume_history",
    "start_background_worker",
    "stop_background_worker",
]
