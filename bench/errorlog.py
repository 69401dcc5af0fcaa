"""Error-log benchmark: seed a large log, then time the dashboard's queries, the export and the recorder.

    .venv/bin/python bench/errorlog.py --engine sqlite|postgres|both [--rows 1000000] [--runs 20]

SQLite runs on a file in a temporary directory; Postgres in a throw-away database created
(and dropped at the end) on the server of STUDIO_TEST_PG_URL (default: the local test
server on 127.0.0.1:5432). Prints p50/p95 in milliseconds per query; not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pg_scratch import scratch_database, server_version  # noqa: E402 - bench/ is sys.path[0] when this file runs
from record_cost import measure_record_cost  # noqa: E402
from sqlalchemy import Engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from core.auth.claims import AS_LOGIN_ROLE  # noqa: E402
from core.config import reload_settings  # noqa: E402
from core.errorlog import (  # noqa: E402
    ErrorFilter,
    error_groups,
    error_stats,
    reset_recorder,  # noqa: E402
    search_errors,
)
from core.errorlog.export import export_csv  # noqa: E402
from core.errorlog.seed import seed_errors  # noqa: E402
from core.runtime import settle_heap  # noqa: E402
from core.store import create_store_engine, migrate, reset_engine  # noqa: E402
from core.store.schema import error_logs  # noqa: E402


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
    return statistics.median(ms), p95


def timed(label: str, fn: Callable[[], Any], runs: int, results: list[dict[str, Any]]) -> Any:
    fn()  # warm the cache and the statement cache, as a dashboard that is in use would be
    samples = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    p50, p95 = percentiles(samples)
    results.append({"query": label, "p50_ms": p50, "p95_ms": p95, "runs": runs})
    print(f"  {label:<44} p50 {p50:9.1f} ms   p95 {p95:9.1f} ms", flush=True)
    return out


def bench_queries(engine: Engine, runs: int, export_rows: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    timed("first page, unfiltered (50 rows + total)", lambda: search_errors(engine, ErrorFilter()), runs, results)
    for needle in ("connection refused", "invalid x-api-key", "50%_"):
        page = timed(f"free-text search {needle!r}", lambda n=needle: search_errors(engine, ErrorFilter(search=n)),
                     runs, results)
        results[-1]["matches"] = page.total
    flt = ErrorFilter(types=["api"], severities=["error"], since=now - timedelta(days=7))
    page = timed("type + severity + last 7 days", lambda: search_errors(engine, flt), runs, results)
    results[-1]["matches"] = page.total
    timed("page 100 of that filter (offset 4950)", lambda: search_errors(engine, flt, page=100), runs, results)
    timed("stats, last 24 h (hourly)", lambda: error_stats(engine, since=now - timedelta(hours=24)), runs, results)
    timed("stats, last 30 days (daily)", lambda: error_stats(engine, since=now - timedelta(days=30), bucket="day"),
          runs, results)
    timed("stats, last 30 days (hourly)", lambda: error_stats(engine, since=now - timedelta(days=30)), runs, results)
    timed("groups, all rows (top 50)", lambda: error_groups(engine), runs, results)
    timed("groups, last 24 h (top 50)", lambda: error_groups(engine, ErrorFilter(since=now - timedelta(hours=24))),
          runs, results)
    # an export of about `export_rows` rows: the newest ones
    with engine.connect() as conn:
        cutoff = conn.execute(select(error_logs.c.created_at).order_by(error_logs.c.created_at.desc())
                              .offset(export_rows - 1).limit(1)).scalar_one()
    export_filter = ErrorFilter(since=cutoff)

    def export() -> int:
        with open(os.devnull, "w", newline="", encoding="utf-8") as sink:
            return export_csv(engine, export_filter, sink)

    count = timed(f"CSV export of {export_rows:,} rows", export, max(3, runs // 5), results)
    results[-1]["rows"] = count
    results[-1]["rows_per_s"] = round(count / (results[-1]["p50_ms"] / 1000))
    return results


def bench_recorder(url: str, n: int) -> dict[str, Any]:
    """record() into the benchmark database through the configured-database path the app uses."""
    os.environ["DATABASE_URL"] = url
    reload_settings()
    reset_engine()
    try:
        return measure_record_cost(n)
    finally:
        reset_recorder()
        reset_engine()


def run_engine(name: str, url: str, rows: int, runs: int, export_rows: int, record_n: int) -> dict[str, Any]:
    print(f"\n== {name}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    engine = create_store_engine(url)
    migrate(engine, force=True)
    t0 = time.perf_counter()
    seeded = seed_errors(engine, rows, days=30, seed=42)
    seed_s = time.perf_counter() - t0
    print(f"  seeded {seeded:,} rows in {seed_s:.1f} s ({seeded / seed_s:,.0f} rows/s)", flush=True)
    if name == "postgres":
        # as the tables' owner: a person's role may not analyze them (Postgres skips them with a warning)
        with engine.connect().execution_options(**{AS_LOGIN_ROLE: True}) as conn:
            conn.execute(text("ANALYZE error_logs"))
            conn.commit()
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    results = bench_queries(engine, runs, export_rows)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(error_logs)).scalar_one()
    engine.dispose()
    rec = bench_recorder(url, record_n)
    print(f"  record(): app error {rec['app_error']['mean_us']} µs mean / {rec['app_error']['p99_us']} µs p99; "
          f"raw exception {rec['raw_exception']['mean_us']} µs mean / {rec['raw_exception']['p99_us']} µs p99",
          flush=True)
    print(f"  writer: {rec['written']:,} rows in {rec['total_s']} s = {rec['writer_rows_per_s']:,} rows/s "
          f"from the first record() (flushed: {rec['flushed']}); {rec['writer_busy_rows_per_s']:,} rows/s "
          f"over its {rec['writer_busy_s']} s of writing", flush=True)
    return {"engine": name, "rows": total, "seed_rows_per_s": round(seeded / seed_s), "queries": results,
            "record": rec}


def machine() -> str:
    try:
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        mem = "RAM unknown"
    return (f"{os.cpu_count()} CPUs (nproc), {mem}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--record-n", type=int, default=20_000, help="record() calls for the recorder figures")
    args = parser.parse_args()
    settle_heap()  # as the app and the CLI do once they have started
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-errorlog-") as tmp:
        os.environ["STUDIO_DATA_DIR"] = tmp  # the recorder's spool stays in the temp dir too
        if args.engine in ("sqlite", "both"):
            run_engine("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.rows, args.runs, args.export_rows,
                       args.record_n)
        if args.engine in ("postgres", "both"):
            print(server_version(), flush=True)
            with scratch_database("bench_errorlog") as url:
                try:
                    run_engine("postgres", url, args.rows, args.runs, args.export_rows, args.record_n)
                finally:
                    reset_engine()
    return 0


if __name__ == "__main__":
    sys.exit(main())
