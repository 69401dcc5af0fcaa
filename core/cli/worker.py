"""`python -m core worker [--once] [--concurrency N]`: a batch worker process."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from sqlalchemy import Engine

from core.batches import leases
from core.batches.worker import BatchWorker
from core.cli.args import whole_number
from core.config import get_settings
from core.settings_store import apply_persisted
from core.store import get_engine, utcnow
from core.store.engine import limit_sqlite_cache
from core.ui.timefmt import duration


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="work queued batches (SIGTERM: release the lease and stop)")
    p.add_argument("--once", action="store_true", help="exit 0 when nothing is left to claim")
    p.add_argument("--concurrency", type=whole_number(1, "max_concurrency"), help="parallel items (default: settings.worker_concurrency)")
    p.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    # the numbers analysts saved on the Settings page apply to stand-alone workers too
    engine = get_engine()
    _settings, skipped = apply_persisted(engine)
    for problem in skipped:
        print(f"warning: saved setting ignored: {problem}", file=sys.stderr)
    limit_sqlite_cache(engine, get_settings().worker_sqlite_cache_mb)
    worker = BatchWorker(concurrency=args.concurrency)

    async def _main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        return await worker.run(once=args.once)

    code = asyncio.run(_main())
    if args.once and not worker.stopping:
        _say_what_is_held(engine, worker.worker_id)
    return code


def _say_what_is_held(engine: Engine, worker_id: str) -> None:
    """--once found nothing to claim: name the batches another worker's lease still holds (a killed one's, maybe)."""
    for batch_id, until in leases.held_elsewhere(engine, worker_id):
        left = duration((until - utcnow()).total_seconds())
        print(f"note: batch {batch_id[:8]} is held by another worker's lease for {left} more. If that worker "
              "was stopped or killed, run the worker again after that and it takes the batch over.", file=sys.stderr)
