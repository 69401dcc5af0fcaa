"""UI benchmark: with a large error log, how long the pages take to render (AppTest, server side).

    .venv/bin/python bench/ui.py [--rows 1000000] [--runs 5] [--engine sqlite|postgres] [--write]

Seeds `--rows` synthetic error rows (30 days) into a fresh database, then times full script
runs of the real entrypoint with AppTest: the Errors page's first view (a new session, caches
cleared), a search on it, and Home. Targets from the issue: Errors < 1.5 s, search < 1 s,
Home < 1 s. Browser paint time comes on top (a few hundred ms). Not a test: prints figures;
--write appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGETS_S = {"errors_first_view": 1.5, "errors_search": 1.0, "home": 1.0}


def _database(engine_name: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp / 'studio.db'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"studio_bench_ui_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from core.store import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), drop


def _count(engine) -> int:
    from sqlalchemy import func, select

    from core.store.schema import error_logs

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(error_logs)).scalar_one())


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120)


def _fresh_session(page: str | None):
    """A new session (cold caches) opening `page` directly, as a deep link would."""
    import streamlit as st

    st.cache_data.clear()
    at = _app()
    if page:
        at.switch_page(f"app_pages/{page}.py")
    return at


def _timed_run(at) -> float:
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")
    if at.error:
        from core.errorlog import recent

        caught = [f"{r.get('component')}: {r.get('message')}" for r in recent(5) if str(r.get("component", "")).startswith("ui.")]
        raise RuntimeError(f"the page shows an error: {[e.value for e in at.error]}; recorded: {caught}")
    return elapsed


def _quiet() -> None:
    import logging

    # AppTest runs without a server; Streamlit says so on every run
    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context",
                 "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).setLevel(logging.ERROR)


def measure(runs: int) -> dict[str, list[float]]:
    _quiet()
    out: dict[str, list[float]] = {k: [] for k in TARGETS_S}
    _timed_run(_fresh_session("errors"))  # imports (plotly, pandas, the SDK) are not part of a page view
    for _ in range(runs):
        at = _fresh_session("errors")
        out["errors_first_view"].append(_timed_run(at))
        shown = {m.label: m.value for m in at.metric}
        if "Errors" not in shown or not at.dataframe:
            raise RuntimeError(f"the Errors page did not show its cards and table: {shown}")
        at.text_input(key="errors.search").input("timeout")
        out["errors_search"].append(_timed_run(at))
        if not any("matching rows" in c.value for c in at.caption):
            raise RuntimeError("the search did not show its result count")
        out["home"].append(_timed_run(_fresh_session(None)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--write", action="store_true", help="append the figures to bench/RESULTS.md")
    parser.add_argument("--reuse", type=Path, help="sqlite only: keep the seeded database in this folder and reuse it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url, drop = _database(args.engine, tmp)
        reuse = args.reuse is not None and args.engine == "sqlite"
        if reuse:
            args.reuse.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{args.reuse / 'studio.db'}"
        os.environ.update({"DATABASE_URL": url, "STUDIO_DATA_DIR": str(tmp), "STUDIO_UI_BACKGROUND_WORKER": "false",
                           "STUDIO_SECRETS_FILE": str(tmp / "none.toml")})
        from core.config import reload_settings
        from core.errorlog.seed import seed_errors
        from core.store import get_engine, migrate

        reload_settings()
        engine = get_engine()
        migrate(engine)
        have = _count(engine) if reuse else 0
        if have < args.rows:
            t0 = time.perf_counter()
            seed_errors(engine, args.rows - have, days=30)
            print(f"seeded {args.rows - have:,} error rows on {args.engine} in {time.perf_counter() - t0:.1f} s",
                  flush=True)
        try:
            figures = measure(args.runs)
        finally:
            drop()

    lines = [f"### UI ({args.engine}, {args.rows:,} error rows, {args.runs} runs, AppTest full script run)", "",
             f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs (shared).", "",
             "| view | median | max | target |", "| --- | --- | --- | --- |"]
    for name, samples in figures.items():
        med, worst = statistics.median(samples), max(samples)
        flag = "ok" if med < TARGETS_S[name] else "MISSED"
        print(f"  {name:<20} median {med * 1000:8.0f} ms   max {worst * 1000:8.0f} ms   "
              f"target < {TARGETS_S[name] * 1000:.0f} ms  {flag}", flush=True)
        lines.append(f"| {name.replace('_', ' ')} | {med * 1000:.0f} ms | {worst * 1000:.0f} ms | "
                     f"< {TARGETS_S[name] * 1000:.0f} ms ({flag}) |")
    if args.write:
        results = ROOT / "bench" / "RESULTS.md"
        with results.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
