"""What record() costs its caller, and how fast the error log's writer stores rows (for bench/errorlog.py).

    .venv/bin/python bench/record_cost.py [N]

Run on its own it records N errors (default 20,000) into the configured database
(DATABASE_URL), migrating it first as every entry point does, and prints the figures as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.errorlog.recorder import flush, record, recorder_stats, shutdown  # noqa: E402
from core.errors import APIError, ErrorCode, Severity  # noqa: E402
from core.runtime import settle_heap  # noqa: E402
from core.store import get_engine, migrate  # noqa: E402

__all__ = ["measure_record_cost"]


def _percentile(sorted_ns: list[int], q: float) -> float:
    index = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[index] / 1000.0


def measure_record_cost(n: int = 20_000, *, flush_timeout: float = 300.0) -> dict[str, Any]:
    """Record `n` errors into the configured database and time both sides.

    Half are ready AppErrors (what the client records per failed attempt), half raw exceptions
    that record() has to classify. Returns µs per call (mean, p50, p99) for each half, and the
    writer's rows per second from the first record() until flush() saw every row stored, and
    over the time the writer spent writing (without lingering behind the burst).
    """
    app_error = APIError("RateLimitError (429): Number of request tokens has exceeded your per-minute rate limit",
                         code=ErrorCode.RATE_LIMITED, severity=Severity.WARN, status_code=429,
                         request_id="req_011CSHoEeqs5C35K2UUqR7Fy", retry_after_s=2.0)
    raw_error = ConnectionResetError(104, "Connection reset by peer")
    context = {"model": "claude-sonnet-5-5", "batch_item": 17, "api_key": "sk-ant-api03-not-a-real-key"}
    # warm up: the first classify() of a foreign exception imports the SDK's error classes and the
    # writer thread starts; both are once per process, not the per-call cost
    record(app_error, component="bench-warmup")
    record(raw_error, component="bench-warmup")
    flush(flush_timeout)
    before = recorder_stats()
    timings: dict[str, list[int]] = {"app_error": [], "raw_exception": []}
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for i in range(n):
        kind, exc = ("app_error", app_error) if i % 2 == 0 else ("raw_exception", raw_error)
        t0 = clock()
        record(exc, component="bench", context=context, operation_id="bench-batch", attempt=i % 4)
        timings[kind].append(clock() - t0)
    enqueued = time.perf_counter()
    flushed = flush(flush_timeout)
    done = time.perf_counter()
    after = recorder_stats()
    result: dict[str, Any] = {"n": n, "flushed": bool(flushed), "lost": flushed.lost}
    for kind, values in timings.items():
        values.sort()
        result[kind] = {
            "mean_us": round(statistics.fmean(values) / 1000.0, 2),
            "p50_us": round(_percentile(values, 0.50), 2),
            "p99_us": round(_percentile(values, 0.99), 2),
        }
    written = after["written"] - before["written"]
    result["written"] = written
    result["enqueue_s"] = round(enqueued - start, 3)
    result["total_s"] = round(done - start, 3)
    result["writer_rows_per_s"] = round(written / (done - start)) if done > start else None
    # the writer's own rate: rows over the time it spent writing, without its lingering behind the burst
    busy = after["busy_s"] - before["busy_s"]
    result["writer_busy_s"] = round(busy, 3)
    result["writer_busy_rows_per_s"] = round(written / busy) if busy > 0 else None
    return result


if __name__ == "__main__":
    migrate(get_engine())
    settle_heap()  # as the app and the CLI do once they have started
    print(json.dumps(measure_record_cost(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000), indent=2))
    shutdown()
