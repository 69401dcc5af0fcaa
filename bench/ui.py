"""UI benchmark: with a large error log, how long the pages take to render (AppTest, and a real browser).

    .venv/bin/python bench/ui.py [--rows 1000000] [--runs 5] [--engine sqlite|postgres] [--browser] [--write]

Seeds `--rows` synthetic error rows (30 days) into a fresh database, then times full script
runs of the real entrypoint with AppTest: the Errors page's first view (a new session, caches
cleared), a sort change and a search on it, and Home. Targets from the issue: Errors < 1.5 s,
search < 1 s, sort < 1 s, Home < 1 s.

--browser (SQLite only) then starts the app with `streamlit run Home.py` on a free port against
the same database and times the same views in headless Chromium (Playwright), each run in a new
browser context (a new session, an empty browser cache), from the action until what a person
waits for is on screen (see VISIBLE); the first views again in one context kept for the run (a
returning person: a new session, the browser's cache warm); and Streamlit's own floor for the same first views (a
bare page with the same heading, cards and table; see _FLOOR_SCRIPT), alternating with ours run
by run, so the figures read as a ratio on a shared machine. Not a test: prints figures; --write appends them to
bench/RESULTS.md.
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
TARGETS_S = {"errors_first_view": 1.5, "errors_sort": 1.0, "errors_search": 1.0, "home": 1.0}
SEARCH_WORD = "timeout"
SORT_BY = "severity"  # descending: the most severe rows first


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
    _timed_run(_fresh_session("errors"))  # imports (pandas, the SDK) are not part of a page view
    for _ in range(runs):
        at = _fresh_session("errors")
        out["errors_first_view"].append(_timed_run(at))
        shown = {m.label: m.value for m in at.metric}
        if "Errors" not in shown or not at.dataframe:
            raise RuntimeError(f"the Errors page did not show its cards and table: {shown}")
        at.text_input(key="errors.search").input(SEARCH_WORD)
        out["errors_search"].append(_timed_run(at))
        if not any("matching rows" in c.value for c in at.caption):
            raise RuntimeError("the search did not show its result count")
        at.text_input(key="errors.search").input("").run()
        at.selectbox(key="errors.sort").set_value(SORT_BY)
        out["errors_sort"].append(_timed_run(at))
        if set(at.dataframe[0].value["severity"]) != {"critical"}:
            raise RuntimeError("the sort did not put the most severe rows first")
        out["home"].append(_timed_run(_fresh_session(None)))
    return out


# What "visible" means in the browser, as DOM conditions polled once per animation frame. The
# Errors table: its st.dataframe (a glide-data-grid canvas) is in a container that is not stale
# (Streamlit marks the elements of a rerun still in flight data-stale="true"), its canvas has a
# size, the grid has written its first row's cells (the accessible table glide keeps inside the
# canvas mirrors the drawn rows), no skeleton is left on the page, and the caption under the
# table shows "Page x of y · n matching rows". A search: the same, the caption's text differs
# from before the search, and the first row holds the searched word. A sort: the same, every
# drawn row is critical (the default sort, newest first, never draws a page of only critical
# rows here). Home: its three error cards (st.metric) show their values and no skeleton is left.
_JS_TABLE = """(want) => {
  if (document.querySelector('[data-testid="stSkeleton"]')) return null;
  const box = document.querySelector('.st-key-errors_grid [data-testid="stElementContainer"][data-stale="false"]');
  const canvas = box && box.querySelector('[data-testid="stDataFrame"] canvas[data-testid="data-grid-canvas"]');
  if (!canvas || !canvas.width || !canvas.height) return null;
  const rows = [...canvas.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => c.innerText));
  if (!rows.length || !rows[0].join('').trim()) return null;
  const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map(c => c.innerText).find(t => /Page [\\d,]+ of [\\d,]+ · [\\d,]+ matching rows/.test(t));
  if (!caption || caption === want.caption_not) return null;
  if (want.first_row_has && !rows[0].join(' ').toLowerCase().includes(want.first_row_has)) return null;
  if (want.severity && !rows.every(r => r[2] === want.severity)) return null;  // When, Time (UTC), Severity
  window.__visibleAt = performance.now();
  return caption;
}"""
_JS_HOME = """() => {
  if (document.querySelector('[data-testid="stSkeleton"]')) return null;
  const cards = [...document.querySelectorAll('[data-testid="stElementContainer"][data-stale="false"] [data-testid="stMetric"]')];
  const values = cards.map(c => (c.querySelector('[data-testid="stMetricValue"]') || {}).innerText || '');
  if (cards.length < 3 || !values.every(v => v.trim())) return null;
  window.__visibleAt = performance.now();
  return values;
}"""
VISIBLE_TIMEOUT_MS = 60_000


def _table_visible(page, caption_not: str | None = None, first_row_has: str | None = None,
                   severity: str | None = None) -> str:
    """Wait (polled each animation frame) until the Errors table is visible as asked; its caption."""
    want = {"caption_not": caption_not, "first_row_has": first_row_has, "severity": severity}
    return str(page.wait_for_function(_JS_TABLE, arg=want, polling="raf", timeout=VISIBLE_TIMEOUT_MS).json_value())


# every websocket message the page receives, stamped (ms since navigation) as it arrives
_JS_WS_LOG = """(() => {
  window.__ws = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => window.__ws.push([performance.now(), e.data.byteLength || e.data.size || 0]));
    }
  };
})();"""
_JS_WS_LAST = """(since) => {
  const got = window.__ws.filter(m => m[0] >= since && m[0] <= window.__visibleAt);
  return [window.__visibleAt - since, got.length ? got[got.length - 1][0] - since : 0, got.reduce((n, m) => n + m[1], 0)];
}"""


def _where_time_goes(page, split: dict[str, list[float]], view: str, since_ms: float = 0.0) -> None:
    """In-page figures of the wait just measured: when it became visible, when the last message before that arrived."""
    visible_ms, last_message_ms, received = page.evaluate(_JS_WS_LAST, since_ms)
    split.setdefault(f"{view}: visible, in-page clock", []).append(visible_ms / 1000)
    split.setdefault(f"{view}: last websocket message before visible", []).append(last_message_ms / 1000)
    split.setdefault(f"{view}: websocket bytes before visible (KB, not ms)", []).append(received / 1000 / 1000)


def _now_ms(page) -> float:
    return float(page.evaluate("() => performance.now()"))


def _browser_run(browser, url: str, out: dict[str, list[float]], split: dict[str, list[float]]) -> None:
    """One person's visit in a new context: open Errors, search, clear it, sort; then Home in another new context."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.add_init_script(_JS_WS_LOG)
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(f"{url}/errors", wait_until="commit")
        page.get_by_role("heading", name="Errors", level=1).wait_for(timeout=VISIBLE_TIMEOUT_MS)
        split.setdefault("errors first view: heading visible", []).append(time.perf_counter() - t0)
        caption = _table_visible(page)
        out["errors_first_view"].append(time.perf_counter() - t0)
        split.setdefault("errors first view: DOMContentLoaded", []).append(page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd") / 1000)
        _where_time_goes(page, split, "errors first view")

        search = page.get_by_placeholder("words from the message")
        search.fill(SEARCH_WORD)
        since = _now_ms(page)
        t0 = time.perf_counter()
        search.press("Enter")
        searched = _table_visible(page, caption_not=caption, first_row_has=SEARCH_WORD)
        out["errors_search"].append(time.perf_counter() - t0)
        _where_time_goes(page, split, "errors search", since)
        search.fill("")
        search.press("Enter")
        _table_visible(page, caption_not=searched)

        page.get_by_role("combobox", name="Sort by").click()
        option = page.get_by_role("option", name=SORT_BY.capitalize(), exact=True)
        option.wait_for(timeout=VISIBLE_TIMEOUT_MS)
        since = _now_ms(page)
        t0 = time.perf_counter()
        option.click()
        _table_visible(page, severity="critical")
        out["errors_sort"].append(time.perf_counter() - t0)
        _where_time_goes(page, split, "errors sort", since)
    finally:
        context.close()
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.add_init_script(_JS_WS_LOG)
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function(_JS_HOME, polling="raf", timeout=VISIBLE_TIMEOUT_MS)
        out["home"].append(time.perf_counter() - t0)
        _where_time_goes(page, split, "home")
    finally:
        context.close()


# Streamlit's own floor, measured in the same run: the least a Streamlit page needs to show what
# "visible" waits for on ours (a heading, three cards, a 50-row table in the same keyed container,
# its caption), with no database, no charts and no sidebar. Our figure over this one is the part
# of the wait that is ours to cut.
_FLOOR_SCRIPT = """
import pandas as pd
import streamlit as st


def errors():
    st.title("Errors")
    for column, (label, value) in zip(st.columns(3), [("Errors", "1,000,000"), ("Critical", "41"), ("Open", "12")]):
        column.metric(label, value)
    rows = pd.DataFrame({"When": ["2 min ago"] * 50, "Time (UTC)": ["2026-12-01 10:00:00"] * 50,
                         "Severity": ["error"] * 50, "Type": ["server"] * 50, "Code": ["server_error"] * 50,
                         "Message": [f"upstream returned 500 on request {i}" for i in range(50)]})
    with st.container(key="errors_grid"):
        st.dataframe(rows, hide_index=True)
    st.caption("Page 1 of 20,000 · 1,000,000 matching rows")


st.navigation([st.Page(errors, title="Errors", url_path="errors", default=True)]).run()
"""


def _warm_run(context, url: str, split: dict[str, list[float]], label: str) -> None:
    """A returning person's first view: a new page (a new Streamlit session) in a context whose HTTP cache is warm."""
    for view, path, js in (("errors first view", "/errors", _JS_TABLE), ("home", "", _JS_HOME)):
        page = context.new_page()
        try:
            t0 = time.perf_counter()
            page.goto(f"{url}{path}", wait_until="commit")
            page.wait_for_function(js, arg={}, polling="raf", timeout=VISIBLE_TIMEOUT_MS)
            split.setdefault(f"{label}{view}, browser cache warm (a new session)", []).append(time.perf_counter() - t0)
        finally:
            page.close()


def _floor_run(browser, url: str, out: dict[str, list[float]]) -> None:
    """The floor page's first view in a new context: until the table is visible, and until its cards are."""
    for view, path, js in (("errors_first_view", "/errors", _JS_TABLE), ("home", "", _JS_HOME)):
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        try:
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}{path}", wait_until="commit")
            page.wait_for_function(js, arg={}, polling="raf", timeout=VISIBLE_TIMEOUT_MS)
            out[view].append(time.perf_counter() - t0)
        finally:
            context.close()


def measure_browser(data_dir: Path, runs: int, gap_s: float, app_env: dict[str, str],
                    floor_dir: Path) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]], str]:
    """The same views in headless Chromium against `streamlit run Home.py`, each run followed by the floor's.

    (figures, split, the floor's figures, the app's log). Ours and the floor alternate run by run, so
    a change of the machine's load falls on both."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from browser_app import CHROMIUM, CHROMIUM_ARGS, RunningApp
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {k: [] for k in TARGETS_S}
    split: dict[str, list[float]] = {}
    floor: dict[str, list[float]] = {"errors_first_view": [], "home": []}
    floor_dir.mkdir(parents=True, exist_ok=True)
    script = floor_dir / "floor_app.py"
    script.write_text(_FLOOR_SCRIPT, encoding="utf-8")
    app = RunningApp(data_dir, **app_env).start()
    floor_app = RunningApp(floor_dir, script=str(script)).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                _browser_run(browser, app.url, {k: [] for k in TARGETS_S}, {})  # first runs import
                _floor_run(browser, floor_app.url, {"errors_first_view": [], "home": []})
                warm = browser.new_context(viewport={"width": 1400, "height": 1800})  # one cache, kept
                _warm_run(warm, app.url, {}, "")
                _warm_run(warm, floor_app.url, {}, "")
                for _ in range(runs):
                    time.sleep(gap_s)  # the stats' 5 s cache runs out, as between two people's visits
                    _browser_run(browser, app.url, out, split)
                    _floor_run(browser, floor_app.url, floor)
                    _warm_run(warm, app.url, split, "")
                    _warm_run(warm, floor_app.url, split, "floor: ")
                warm.close()
            finally:
                browser.close()
    finally:
        app.stop()
        floor_app.stop()
    return out, split, floor, app.log()


def _p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--browser", action="store_true", help="sqlite only: also time the views in headless Chromium")
    parser.add_argument("--gap", type=float, default=6.0, help="seconds between two browser visits (default 6)")
    parser.add_argument("--no-file-watcher", action="store_true",
                        help="start the app with server.fileWatcherType none (a deployment setting, not the repo's)")
    parser.add_argument("--write", action="store_true", help="append the figures to bench/RESULTS.md")
    parser.add_argument("--reuse", type=Path, help="sqlite only: keep the seeded database in this folder and reuse it")
    args = parser.parse_args()
    if args.browser and args.engine != "sqlite":
        parser.error("--browser runs the app on its SQLite file: use --engine sqlite")

    browser: dict[str, list[float]] = {}
    floor: dict[str, list[float]] = {}
    split: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url, drop = _database(args.engine, tmp)
        reuse = args.reuse is not None and args.engine == "sqlite"
        data_dir = args.reuse if reuse else tmp
        if reuse:
            args.reuse.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{args.reuse / 'studio.db'}"
        os.environ.update({"DATABASE_URL": url, "STUDIO_DATA_DIR": str(tmp), "STUDIO_UI_BACKGROUND_WORKER": "false",
                           "STUDIO_SECRETS_FILE": str(tmp / "none.toml")})
        from core.config import reload_settings
        from core.errorlog.seed import seed_errors
        from core.store import get_engine, migrate, reset_engine

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
            load_before = _load()
            figures = measure(args.runs)
            loads = {"apptest": f"{load_before} -> {_load()}"}
            if args.browser:
                reset_engine()  # the app opens the file itself
                load_before = _load()
                app_env = {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"} if args.no_file_watcher else {}
                browser, split, floor, _log = measure_browser(data_dir, args.runs, args.gap, app_env, tmp / "floor")
                loads["browser"] = f"{load_before} -> {_load()}"
        finally:
            drop()

    title = "AppTest full script run" + (" and headless Chromium" if browser else "") + \
        (", app file watcher off" if browser and args.no_file_watcher else "")
    lines = [f"### UI ({args.engine}, {args.rows:,} error rows, {args.runs} runs, {title})", "",
             f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs (shared). "
             + "; ".join(f"Load average (1/5/15 min) during {k}: {v}" for k, v in loads.items()) + ".", ""]
    header = "| view | AppTest p50 / p95 |" + (" browser p50 / p95 |" if browser else "") + " target |" + \
        (" Streamlit floor p50 / p95 (ours ÷ floor at p50) |" if floor else "")
    lines += [header, "|" + " --- |" * header.count(" |")]
    for name, target in TARGETS_S.items():
        row = f"| {name.replace('_', ' ')} | {' / '.join(map(_ms, _p50_p95(figures[name])))} |"
        judged = figures[name]
        if browser:
            row += f" {' / '.join(map(_ms, _p50_p95(browser[name])))} |"
            judged = browser[name]
        flag = "ok" if _p50_p95(judged)[0] < target else "MISSED"
        row += f" < {_ms(target)} ({flag}) |"
        if floor:
            row += (f" {' / '.join(map(_ms, _p50_p95(floor[name])))} "
                    f"({_p50_p95(browser[name])[0] / _p50_p95(floor[name])[0]:.2f}×) |") if name in floor else " |"
        lines.append(row)
    for name, samples in split.items():
        shown = " / ".join(f"{v * 1000:,.0f} KB" for v in _p50_p95(samples)) if "KB" in name else \
            " / ".join(map(_ms, _p50_p95(samples)))
        lines.append(f"| ({name.replace(' (KB, not ms)', '')}) | | {shown} | |" + (" |" if floor else ""))
    print("\n".join(lines), flush=True)
    if args.write:
        results = ROOT / "bench" / "RESULTS.md"
        with results.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
