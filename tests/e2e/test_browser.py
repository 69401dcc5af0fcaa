"""The real app in headless Chromium: a 20-item batch to 100%, the error CSV, resume after a reload,
how fast a failing call shows its first error, and a screenshot of every page.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/test.sh); Playwright's own browser
download is never used. The app runs as `streamlit run Home.py` on a free port with a fresh
SQLite database and no API key, so every call goes to the in-process sandbox.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator

import pytest
from browser_app import CHROMIUM, CHROMIUM_ARGS, RunningApp

from core.config import ROOT

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = ["", "generate", "batches", "conversations", "errors", "recovery", "settings"]
SEEDED_ERRORS = 120
FIRST_ERROR_BOUND_S = 10.0  # the target is 2 s; the bound is generous so a busy machine passes


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    """One app for the module, its database seeded with error rows before it starts."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run the README's test command (bash scripts/test.sh), which installs "
                    "Debian's chromium for the browser test.")
    data = tmp_path_factory.mktemp("app")
    from core.errorlog.seed import seed_errors
    from core.store import create_store_engine, migrate

    engine = create_store_engine(f"sqlite:///{data / 'studio.db'}")
    migrate(engine, force=True)
    seed_errors(engine, SEEDED_ERRORS, days=2)
    engine.dispose()
    running = RunningApp(data).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def _open(page, app, path: str) -> None:
    page.goto(f"{app.url}/{path}")
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)


def test_batch_of_twenty_reaches_100_percent_live(page, app):
    """A 20-item batch launched from the UI shows 20 / 20 (100%) without a reload."""
    _open(page, app, "batches")
    page.get_by_role("button", name="Launch batch").click()
    page.get_by_text(re.compile(r"^0 / 20 \(0%\)|/ 20 \(")).first.wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"20 / 20 \(100%\)")).first.wait_for(timeout=180_000)
    assert page.get_by_text("completed").first.is_visible()


def test_error_csv_has_the_header_and_the_filtered_rows(page, app, tmp_path):
    """Download CSV gives the export header and exactly as many rows as the filter matches."""
    from core.errorlog.export import EXPORT_COLUMNS

    _open(page, app, "errors")
    page.get_by_label("Severity").click()
    page.get_by_role("option", name="critical").click()
    page.keyboard.press("Escape")
    caption = page.get_by_text(re.compile(r"matching rows$")).first
    caption.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the rerun with the new filter settle
    matching = int(re.search(r"· ([\d,]+) matching rows", caption.inner_text()).group(1).replace(",", ""))
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "errors.csv"
    info.value.save_as(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert 0 < matching == len(rows) - 1
    assert {r[EXPORT_COLUMNS.index("severity")] for r in rows[1:]} == {"critical"}


def test_reload_mid_stream_offers_the_draft_for_resume(page, app):
    """A generation interrupted by a page reload is offered for resume, with its text kept."""
    _open(page, app, "generate")
    page.get_by_label("Turns (messages, even)").fill("24")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"Draft saved .* ago")).first.wait_for(timeout=30_000)
    page.locator('[data-testid="stChatMessage"]').first.wait_for(timeout=30_000)
    page.reload()
    page.get_by_text(re.compile(r"unfinished draft")).first.wait_for(timeout=30_000)
    resume = page.get_by_role("button", name="Resume").first
    resume.wait_for(timeout=15_000)
    resume.click()
    page.get_by_text(re.compile(r"Saved to Conversations")).first.wait_for(timeout=120_000)


def test_first_error_shows_quickly_when_every_call_fails(page, app):
    """With the chaos switch failing every call, the first error is on screen soon after Generate."""
    _open(page, app, "settings")
    page.get_by_text("Every call overloaded (529, retried)").click()
    page.get_by_role("button", name="Apply to the sandbox").click()
    page.get_by_text(re.compile(r"forced status 529")).first.wait_for(timeout=30_000)
    try:
        _open(page, app, "generate")
        button = page.get_by_role("button", name="Generate")
        button.wait_for(timeout=30_000)
        started = time.monotonic()
        button.click()
        page.get_by_text(re.compile(r"Attempt 1 failed|overloaded")).first.wait_for(timeout=30_000)
        elapsed = time.monotonic() - started
        print(f"\nfirst error message on screen {elapsed:.2f} s after clicking Generate")
        assert elapsed < FIRST_ERROR_BOUND_S
    finally:
        _open(page, app, "settings")
        page.get_by_text("Off", exact=True).click()
        page.get_by_role("button", name="Apply to the sandbox").click()
        page.get_by_text(re.compile(r"forced status None")).first.wait_for(timeout=30_000)


def _chaos(page, app, mode: str, shown: str) -> None:
    _open(page, app, "settings")
    page.get_by_text(mode, exact=True).click()
    page.get_by_role("button", name="Apply to the sandbox").click()
    page.get_by_text(re.compile(shown)).first.wait_for(timeout=30_000)


def test_chaos_breaks_a_batch_the_errors_arrive_and_one_click_resumes_it(page, app):
    """A batch broken by a rejected key fails with a reason, its errors are listed, and Resume completes it."""
    _chaos(page, app, "Every call rejected (401, key invalid)", r"forced status 401")
    try:
        _open(page, app, "batches")
        count = page.get_by_label("Conversations")
        count.fill("12")
        count.press("Tab")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Launch batch").click()
        page.get_by_text(re.compile(r"^Why: .*(key|Settings)")).first.wait_for(timeout=60_000)
        assert page.get_by_text(re.compile(r"/ 12 \(")).first.is_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "batch-failed-by-chaos.png"), full_page=True)

        _open(page, app, "errors")
        page.get_by_text("authentication_failed").first.wait_for(timeout=30_000)
    finally:
        _chaos(page, app, "Off", r"forced status None")

    _open(page, app, "batches")
    page.get_by_role("button", name="Resume").first.click()
    page.get_by_text(re.compile(r"12 / 12 \(100%\)")).first.wait_for(timeout=180_000)


def test_screenshots_of_every_page(page, app):
    """Every page renders in the browser without an exception box; a screenshot of each is kept."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path in PAGES:
        _open(page, app, path)
        page.wait_for_timeout(2500)  # charts and fragments draw after the first paint
        page.screenshot(path=str(SHOTS / f"{path or 'home'}.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0, path
