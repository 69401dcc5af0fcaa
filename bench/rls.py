"""Row Level Security cost: the Errors page's and the batch list's queries as a person (RLS on) vs as service_role.

    .venv/bin/python bench/rls.py [--rows 1000000] [--batches 1000] [--runs 20] [--keep]

On a throw-away Postgres database (bench/pg_scratch.py), migrated to head: `--rows` error rows
(core.errorlog.seed.seed_errors; four analysts own 1/12 of them each, the rest are nobody's) and
`--batches` batches of 10 items (core.batches.service.create_batch, owned in turn by the four
analysts and the admin). Each query is the service function the page
calls, run with the acting person in the context (so the app's own conditions are theirs) on a
connection that begins either as that person (`authenticated`, their claims: RLS applies) or as
`service_role` (bypasses RLS); the two alternate run by run. Prints p50/p95 per mode and the
ratio RLS / service_role; `--keep` leaves the database for EXPLAIN ANALYZE. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pg_scratch import scratch_database, server_version  # noqa: E402 - bench/ is sys.path[0] when this file runs
from sqlalchemy import Engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from core.auth import Actor, Role, acting_as, system_actor  # noqa: E402
from core.auth.claims import AS_ACTOR, AS_LOGIN_ROLE  # noqa: E402
from core.auth.users import sign_in  # noqa: E402
from core.batches.service import create_batch, list_batches  # noqa: E402
from core.errorlog import ErrorFilter, error_groups, error_stats, search_errors  # noqa: E402
from core.errorlog.seed import seed_errors  # noqa: E402
from core.store import create_store_engine, migrate  # noqa: E402
from core.store.schema import app_users, batch_items, batch_jobs  # noqa: E402

ANALYSTS = 4
ITEMS_PER_BATCH = 10
PAGE_SIZE = 50  # settings.ui_errors_page_size
LIST_SIZE = 20  # the batch page's live list


def _people(engine: Engine) -> tuple[list[Actor], Actor]:
    analysts = [sign_in(engine, issuer="https://bench.test", subject=f"analyst-{i}", email=f"a{i}@example.com",
                        name=f"analyst {i}") for i in range(ANALYSTS)]
    admin = sign_in(engine, issuer="https://bench.test", subject="admin", email="admin@example.com", name="admin")
    with acting_as(system_actor()), engine.begin() as conn:
        conn.execute(app_users.update().where(app_users.c.id == admin.user_id).values(role=Role.ADMIN.value))
    return analysts, Actor(user_id=admin.user_id, role=Role.ADMIN, email=admin.email, name=admin.name)


def _seed(engine: Engine, rows: int, batches: int, owners: list[str]) -> None:
    t0 = time.perf_counter()
    seed_errors(engine, rows, days=30, seed=42, owners=owners[:ANALYSTS])
    print(f"  {rows:,} error rows in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    statuses = ("done", "done", "done", "failed", "pending", "running", "skipped", "done", "done", "pending")
    with acting_as(system_actor()):
        for i in range(batches):
            batch_id = create_batch(engine, template="customer_support", count=ITEMS_PER_BATCH, name=f"bench {i}")
            with engine.begin() as conn:
                conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
                    owner_id=owners[i % len(owners)], status="completed" if i % 3 else "running"))
                for index, status in enumerate(statuses):
                    conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id,
                                                            batch_items.c.item_index == index).values(status=status))
    print(f"  {batches:,} batches of {ITEMS_PER_BATCH} items in {time.perf_counter() - t0:.1f} s", flush=True)
    # as the tables' owner: service_role or a person may not analyze them (Postgres skips them, warning)
    with engine.connect().execution_options(**{AS_LOGIN_ROLE: True}) as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


AS_SERVICE_ROLE = "bench_as_service_role"  # an execution option: begin as service_role, no claims


def _as_service_role(engine: Engine) -> None:
    """Transactions on connections with AS_SERVICE_ROLE (and AS_LOGIN_ROLE, so claims.py sets nothing) run as service_role."""
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(AS_SERVICE_ROLE):
            conn.exec_driver_sql("SET LOCAL role service_role")


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return statistics.median(ms), ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]


def _compare(label: str, query: Callable[[Engine], Any], engine: Engine, who: Actor, runs: int) -> dict[str, Any]:
    """`query` as `who`, on connections that begin as `who` (RLS) and as service_role, runs alternating."""
    # service_role: the app's own conditions stay `who`'s (an AS_ACTOR of the system would make them
    # the system's: core.errorlog's `viewer`), only the role changes (see _as_service_role)
    modes = {"rls": engine.execution_options(**{AS_ACTOR: who}),
             "service_role": engine.execution_options(**{AS_LOGIN_ROLE: True, AS_SERVICE_ROLE: True})}
    samples: dict[str, list[float]] = {m: [] for m in modes}
    sizes: dict[str, int] = {}
    with acting_as(who):
        for mode, eng in modes.items():
            sizes[mode] = _size(query(eng))  # warm the caches, as a page in use would be
        for _ in range(runs):
            for mode, eng in modes.items():
                t0 = time.perf_counter()
                query(eng)
                samples[mode].append(time.perf_counter() - t0)
    (r50, r95), (s50, s95) = _percentiles(samples["rls"]), _percentiles(samples["service_role"])
    row = {"query": label, "as": who.role.value if who.role else "?", "rls_p50_ms": r50, "rls_p95_ms": r95,
           "service_p50_ms": s50, "service_p95_ms": s95, "ratio_p50": r50 / s50, "ratio_p95": r95 / s95,
           "rows_rls": sizes["rls"], "rows_service": sizes["service_role"]}
    print(f"  {label:<34} {row['as']:<8} RLS p50 {r50:8.1f} p95 {r95:8.1f} ms | service_role p50 {s50:8.1f} "
          f"p95 {s95:8.1f} ms | x{r50 / s50:5.2f} (p95 x{r95 / s95:5.2f}) | rows {sizes['rls']:,} / "
          f"{sizes['service_role']:,}", flush=True)
    return row


def _size(result: Any) -> int:
    if isinstance(result, dict):
        return int(result.get("total", 0))
    if isinstance(result, list):
        return len(result)
    return int(getattr(result, "total", 0))


def queries(now: datetime) -> list[tuple[str, Callable[[Engine], Any]]]:
    """The Errors page's reads at its default range (last 7 days), a search, a narrower filter; the batch list."""
    week = ErrorFilter(since=now - timedelta(days=7))
    narrow = ErrorFilter(types=["api"], severities=["error"], since=now - timedelta(days=7))
    search = ErrorFilter(search="connection refused", since=now - timedelta(days=7))
    rare = ErrorFilter(search="invalid x-api-key", since=now - timedelta(days=7))
    return [
        ("errors page 1, last 7 days", lambda e: search_errors(e, week, page_size=PAGE_SIZE)),
        ("errors page 1, api+error, 7 days", lambda e: search_errors(e, narrow, page_size=PAGE_SIZE)),
        ("search 'connection refused'", lambda e: search_errors(e, search, page_size=PAGE_SIZE)),
        ("search 'invalid x-api-key'", lambda e: search_errors(e, rare, page_size=PAGE_SIZE)),
        ("stats, last 7 days (daily)", lambda e: error_stats(e, week, bucket="day")),
        ("groups, last 7 days (top 20)", lambda e: error_groups(e, week, limit=20)),
        ("batch list (newest 20)", lambda e: list_batches(e, limit=LIST_SIZE)),
    ]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run(url: str, args: argparse.Namespace, seed: bool) -> None:
    engine = create_store_engine(url)
    _as_service_role(engine)
    try:
        migrate(engine, force=True)
        analysts, admin = _people(engine)
        if seed:
            _seed(engine, args.rows, args.batches, [a.user_id or "" for a in analysts] + [admin.user_id or ""])
        results = []
        now = datetime.now(UTC)
        for label, query in queries(now):
            if args.only and args.only not in label:
                continue
            for who in (analysts[0], admin):
                results.append(_compare(label, query, engine, who, args.runs))
        worst = max(results, key=lambda r: r["ratio_p50"])
        print(f"  worst p50 ratio: x{worst['ratio_p50']:.2f} ({worst['query']}, as {worst['as']}); "
              f"load {load_average()}", flush=True)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--url", help="reuse a database --keep left (skips seeding)")
    parser.add_argument("--only", help="run only the queries whose label contains this (e.g. search)")
    args = parser.parse_args()
    print(server_version(), f"· {os.cpu_count()} CPUs · load {load_average()}", flush=True)
    if args.url:
        run(args.url, args, seed=False)
        return 0
    with scratch_database("bench_rls", keep=args.keep) as url:
        if args.keep:
            print(f"  keeping {make_url(url).render_as_string(hide_password=True)}", flush=True)
        run(url, args, seed=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
