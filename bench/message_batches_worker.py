"""Benchmark: one batch of N items through the worker in a mode, against the sandbox, on a fresh SQLite store.

    .venv/bin/python bench/message_batches_worker.py [--n 10000] [--mode message_batches|online]
                                                     [--error-rate 0.05] [--json]

Creates the batch, runs `worker --once` in this process and prints the wall time, the batch's state
and done count, its remote batches, the requests the sandbox received, the batch's cost and the
process's peak RSS (the sandbox runs in the same process, so its memory is in the figure too).
Online mode runs at an unlimited rate limit against a sandbox with no latency. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--mode", choices=("message_batches", "online"), default="message_batches")
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="bench-mb-")
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{data}/studio.db", "STUDIO_DATA_DIR": data, "STUDIO_RETRY_INSTANT": "true",
        "STUDIO_MESSAGE_BATCH_POLL_INTERVAL_S": "0.2", "STUDIO_RATE_LIMIT_RPM": "1000000",
        "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000", "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000"})

    from core.llm.sandbox import SandboxConfig, SandboxServer

    srv = SandboxServer(SandboxConfig(latency_ms=0, tokens_per_s=200_000.0, batch_processing_s=0.5,
                                      batch_error_rate=args.error_rate))
    srv.start()
    os.environ["ANTHROPIC_BASE_URL"] = srv.base_url
    from core.batches.service import create_batch, get_batch_status
    from core.batches.worker import BatchWorker
    from core.config import reload_settings
    from core.store import get_engine, migrate

    reload_settings()
    engine = get_engine()
    migrate(engine)
    batch_id = create_batch(engine, template="tutoring", count=args.n, turns=4, mode=args.mode, concurrency=32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    asyncio.run(BatchWorker(engine, concurrency=32).run(once=True))
    wall = time.perf_counter() - started
    st = get_batch_status(engine, batch_id)
    stats = srv.stats()
    out = {"mode": args.mode, "items": args.n, "wall_s": round(wall, 1), "state": st["state"], "done": st["done"],
           "remote_batches": len(st["submissions"]),
           "requests": stats["batch_requests"] if args.mode == "message_batches" else stats.get("messages_requests"),
           "cost_usd": round(st["cost_usd"], 4), "peak_rss_mb": round(resource.getrusage(
               resource.RUSAGE_SELF).ru_maxrss / 1024), "rss_before_run_mb": round(before)}
    srv.stop()
    print(json.dumps(out) if args.json else "  ".join(f"{k} {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
