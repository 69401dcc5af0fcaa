"""The real app in headless Chromium: a 20-item batch to 100%, the error CSV, resume after a reload,
and a screenshot of every page (the chaos switch is in test_browser_chaos.py).

Chromium is Debian's (/usr/bin/chromium, installed by scripts/test.sh); Playwright's own browser
download is never used. The app runs as `streamlit run Home.py` on a free port with a fresh
SQLite database and no API key, so every call goes to the in-process sandbox (fixtures: conftest.py).
"""

from __future__ import annotations

import csv
import re
import time

import pytest
from browser_app import SHOTS, goto, open_expander

pytestmark = pytest.mark.browser

PAGES = ["", "generate", "batches", "templates", "conversations", "errors", "recovery", "settings"]


def test_batch_of_twenty_reaches_100_percent_live(page, app):
    """A 20-item batch launched from the UI shows 20 / 20 (100%) without a reload."""
    goto(page, app, "batches")
    open_expander(page, "New batch")
    page.get_by_role("button", name="Launch batch").click()
    page.get_by_text(re.compile(r"^0 / 20 \(0%\)|/ 20 \(")).first.wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"20 / 20 \(100%\)")).first.wait_for(timeout=180_000)
    # the batch row turns completed in its own transaction after the last item's; the card follows
    page.get_by_text("completed").first.wait_for(timeout=30_000)


def test_error_csv_has_the_header_and_the_filtered_rows(page, app, tmp_path):
    """Download CSV gives the export header and exactly as many rows as the filter matches."""
    from core.errorlog.export import EXPORT_COLUMNS

    goto(page, app, "errors")
    caption = page.get_by_text(re.compile(r"matching rows$")).first
    caption.wait_for(timeout=30_000)
    unfiltered = caption.inner_text()
    page.get_by_role("combobox", name="Severity").click()
    page.get_by_role("option", name="critical").click()
    page.keyboard.press("Escape")
    # the rerun with the filter has drawn the table (and the download beside it) when the count changes;
    # a click before that, on a loaded machine, downloads what the previous run drew
    deadline = time.monotonic() + 60
    while caption.inner_text() == unfiltered and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)
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


def test_reload_mid_stream_keeps_the_generation_going_on_the_reloaded_page(page, app):
    """A page reload mid-stream loses nothing: the reloaded page shows the same generation live until it is saved."""
    goto(page, app, "generate")
    page.get_by_label("Turns (messages, even)").fill("40")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"Draft saved .* ago")).first.wait_for(timeout=30_000)
    page.locator('[data-testid="stChatMessage"]').first.wait_for(timeout=30_000)
    page.reload()
    page.get_by_text(re.compile(r"Draft saved .* ago")).first.wait_for(timeout=30_000)  # the live view again
    assert page.get_by_text(re.compile(r"unfinished draft")).count() == 0  # not offered twice
    page.get_by_text(re.compile(r"Saved to Conversations")).first.wait_for(timeout=120_000)


def test_screenshots_of_every_page(page, app):
    """Every page renders in the browser without an exception box; a screenshot of each is kept."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path in PAGES:
        goto(page, app, path)
        page.wait_for_timeout(2500)  # charts and fragments draw after the first paint
        page.screenshot(path=str(SHOTS / f"{path or 'home'}.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0, path
