"""What one error row costs SQLite to store, part by part: the floor under the seeder and the writer.

    .venv/bin/python bench/errorlog_floor.py [--rows 200000] [--base-rows 0]

Builds rows with the seeder's own generator (timed on its own), converts them to the
driver's values once, then inserts the same rows into copies of a freshly migrated SQLite
database with parts of the schema taken away, one configuration at a time:

    full schema        every index, the FTS5 trigram trigger and the rollup trigger
    no FTS trigger     the same without the full-text index's insert trigger
    no FTS, no rollup  ... and without the hourly rollup trigger
    table + error_id   ... and without the eight secondary indexes (the unique error_id stays)

then times building the taken-away parts afterwards in one statement each (CREATE INDEX,
the FTS5 'rebuild', the rollup's INSERT ... SELECT). Inserts are what the app's bulk path
sends: multi-row INSERT statements of 500 rows, BEGIN IMMEDIATE per 20,000 rows, WAL,
synchronous=FULL, the seeder's page cache. `--base-rows` puts that many rows in the template
first, to see the cost at scale. The differences between lines are what each part costs per
row; the first line is the most any Python code can store per second with this schema on
this machine. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import get_settings  # noqa: E402
from core.errorlog.seed import _COLUMNS, _recorder_fingerprint, _rows, seed_errors  # noqa: E402
from core.store import create_store_engine, migrate  # noqa: E402
from core.store.schema import error_log_rollup, error_logs  # noqa: E402

ROWS_PER_STATEMENT = 500
ROWS_PER_TRANSACTION = 20_000
# the schema's own secondary indexes (error_id's uniqueness is a constraint, not among them)
SECONDARY_INDEXES = {ix.name: [c.name for c in ix.columns] for ix in error_logs.indexes}
DROP_FTS = ("DROP TRIGGER error_logs_fts_ai",)
DROP_ROLLUP = ("DROP TRIGGER error_logs_rollup_ai",)
DROP_INDEXES = tuple(f"DROP INDEX {name}" for name in SECONDARY_INDEXES)
ROLLUP_KEYS = ", ".join(c.name for c in error_log_rollup.primary_key.columns if c.name != "bucket")


def driver_rows(count: int) -> tuple[list[tuple], float]:
    """`count` seeder rows as the SQLite driver receives them, and the µs per row to build them."""
    t0 = time.perf_counter()
    built = list(_rows(count, 30, random.Random(7), datetime.now(UTC), _recorder_fingerprint))
    build_us = (time.perf_counter() - t0) / count * 1e6
    out = []
    for row in built:
        values = list(row)
        values[1] = values[1].replace(tzinfo=None).isoformat(" ")  # created_at, as UtcDateTime stores it
        values[7] = json.dumps(values[7], separators=(",", ":"))  # context
        if values[20] is not None:
            values[20] = values[20].replace(tzinfo=None).isoformat(" ")  # resolved_at
        out.append(tuple(values))
    return out, build_us


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA cache_size={-1024 * get_settings().log_seed_sqlite_cache_mb}")
    return conn


def insert(conn: sqlite3.Connection, rows: list[tuple]) -> float:
    """Seconds to insert `rows` the way the bulk path does."""
    names = ", ".join(_COLUMNS)
    one = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
    full = f"INSERT INTO error_logs ({names}) VALUES " + ", ".join([one] * ROWS_PER_STATEMENT)
    t0 = time.perf_counter()
    for start in range(0, len(rows), ROWS_PER_TRANSACTION):
        conn.execute("BEGIN IMMEDIATE")
        for k in range(start, min(len(rows), start + ROWS_PER_TRANSACTION), ROWS_PER_STATEMENT):
            chunk = rows[k:k + ROWS_PER_STATEMENT]
            sql = full if len(chunk) == ROWS_PER_STATEMENT else (
                f"INSERT INTO error_logs ({names}) VALUES " + ", ".join([one] * len(chunk)))
            conn.execute(sql, [value for row in chunk for value in row])
        conn.execute("COMMIT")
    return time.perf_counter() - t0


def timed_statement(conn: sqlite3.Connection, *statements: str) -> float:
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for statement in statements:
        conn.execute(statement)
    conn.execute("COMMIT")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--base-rows", type=int, default=0, help="rows already in the table before timing")
    args = parser.parse_args()
    n = args.rows
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; "
          f"{n:,} rows into a table holding {args.base_rows:,}", flush=True)
    rows, build_us = driver_rows(n)
    print(f"  building rows in Python (seed generator)  {build_us:6.1f} µs/row", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        template = Path(tmp) / "template.db"
        engine = create_store_engine(f"sqlite:///{template}")
        migrate(engine, force=True)
        if args.base_rows:
            seed_errors(engine, args.base_rows, seed=1)
        engine.dispose()
        with sqlite3.connect(template) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        results: dict[str, float] = {}
        for label, drops in (
            ("full schema", ()),
            ("no FTS trigger", DROP_FTS),
            ("no FTS, no rollup", DROP_FTS + DROP_ROLLUP),
            ("table + error_id only", DROP_FTS + DROP_ROLLUP + DROP_INDEXES),
        ):
            path = Path(tmp) / "run.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copy(template, path)
            conn = connect(path)
            for statement in drops:
                conn.execute(statement)
            seconds = insert(conn, rows)
            results[label] = seconds / n * 1e6
            print(f"  insert, {label:<34} {results[label]:6.1f} µs/row  {n / seconds:9,.0f} rows/s", flush=True)
            if label == "table + error_id only":
                index_s = timed_statement(conn, *(
                    f"CREATE INDEX {name} ON error_logs ({', '.join(columns)})"
                    for name, columns in SECONDARY_INDEXES.items()))
                fts_s = timed_statement(conn, "INSERT INTO error_logs_fts(error_logs_fts) VALUES ('rebuild')")
                rollup_s = timed_statement(conn, "DELETE FROM error_log_rollup", (
                    f"INSERT INTO error_log_rollup (bucket, {ROLLUP_KEYS}, n) SELECT substr(created_at, 1, 13), "
                    f"{ROLLUP_KEYS}, count(*) FROM error_logs GROUP BY 1, 2, 3, 4, 5, 6, 7"))
                total = n + args.base_rows  # these statements read the whole table
                print(f"  afterwards: {len(SECONDARY_INDEXES)} indexes {index_s / n * 1e6:.1f}, FTS rebuild {fts_s / n * 1e6:.1f}, "
                      f"rollup {rollup_s / n * 1e6:.1f} µs per new row ({total:,} rows read)", flush=True)
            conn.close()
    print(f"  per row: FTS5 trigram trigger {results['full schema'] - results['no FTS trigger']:.1f} µs, "
          f"rollup trigger {results['no FTS trigger'] - results['no FTS, no rollup']:.1f} µs, "
          f"{len(SECONDARY_INDEXES)} secondary indexes {results['no FTS, no rollup'] - results['table + error_id only']:.1f} µs, "
          f"row + error_id {results['table + error_id only']:.1f} µs", flush=True)
    ceiling = 1e6 / results["full schema"]
    print(f"  ceiling with the full schema, SQLite alone: {ceiling:,.0f} rows/s; "
          f"with the Python row build added: {1e6 / (results['full schema'] + build_us):,.0f} rows/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
