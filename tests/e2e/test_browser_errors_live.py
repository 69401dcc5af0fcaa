"""The Errors page in Chromium: the table refreshes on its own, and a click on a chart's bar filters it.

Its own app (module fixture below) refreshes every 5 s, so waiting for the refresh stays short.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from browser_app import RunningApp, goto
from e2e_data import insert_critical_error

pytestmark = pytest.mark.browser

LIVE_REFRESH_S = 1  # the page's fragments run every 5 × this


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    """The app on a seeded store, refreshing every few seconds."""
    from core.errorlog.seed import seed_errors
    from core.store import create_store_engine, migrate

    data = tmp_path_factory.mktemp("live")
    engine = create_store_engine(f"sqlite:///{data / 'studio.db'}")
    migrate(engine, force=True)
    seed_errors(engine, 120, days=2)
    engine.dispose()
    running = RunningApp(data, STUDIO_UI_LIVE_REFRESH_S=str(LIVE_REFRESH_S)).start()
    yield running
    running.stop()


def _matching(page) -> int:
    caption = page.get_by_text(re.compile(r"matching rows$")).first
    caption.wait_for(timeout=30_000)
    return int(re.search(r"· ([\d,]+) matching rows", caption.inner_text()).group(1).replace(",", ""))


def _filter_critical(page) -> None:
    """Narrow to critical, and wait until the table's count is the narrowed one (a loaded run read the old one)."""
    everything = _matching(page)
    page.get_by_role("combobox", name="Severity").click()
    page.get_by_role("option", name="critical").click()
    page.keyboard.press("Escape")
    deadline = time.monotonic() + 60
    while _matching(page) == everything:
        assert time.monotonic() < deadline, "the table's count did not follow the severity filter within 60 s"
        page.wait_for_timeout(250)


def test_a_new_critical_error_appears_in_the_table_without_a_reload(page, app):
    """Filtered to critical, the table's count grows by one within the refresh interval of a new critical error."""
    from core.store import create_store_engine

    goto(page, app, "errors")
    _filter_critical(page)
    before = _matching(page)
    engine = create_store_engine(app.env["DATABASE_URL"])
    insert_critical_error(engine)
    engine.dispose()
    page.get_by_text(re.compile(rf"· {before + 1:,} matching rows$")).first.wait_for(
        timeout=(5 * LIVE_REFRESH_S + 25) * 1000)  # a refresh or two, on a loaded machine


def _bar(page, chart: int, label_starts: str = ""):
    """A bar of the Errors page's chart number `chart` (0 over time, 1 by severity, 2 top codes), drawn and clickable."""
    labelled = f'[aria-label^="{label_starts}"]' if label_starts else ""
    bars = page.locator('[data-testid="stVegaLiteChart"]').nth(chart).locator(
        f'path[aria-roledescription="bar"]{labelled}')
    bars.first.wait_for(timeout=30_000)
    return bars.first


def _rows_of(bar) -> int:
    """The count a bar stands for, from its accessible label ("...; Rows: 12")."""
    return int(re.search(r"Rows: ([\d,]+)", bar.get_attribute("aria-label")).group(1).replace(",", ""))


def _click_until_narrowed(page, chart: int, label_starts: str, everything: int) -> int:
    """Click a bar until the table narrows (a click can land while the live refresh redraws the chart); the count."""
    for _attempt in range(4):
        _bar(page, chart, label_starts).click(force=True)
        for _tick in range(20):
            page.wait_for_timeout(500)
            if _matching(page) != everything:
                return _matching(page)
    return _matching(page)


def _wait_matching(page, want: int) -> None:
    deadline = 30_000
    while _matching(page) != want and deadline > 0:
        page.wait_for_timeout(500)
        deadline -= 500
    assert _matching(page) == want


def test_clicking_a_code_or_a_time_bar_filters_the_table_to_exactly_its_rows(page, app):
    """Top codes' first bar narrows the table to that code's rows; a bar over time to its type's rows of that day."""
    goto(page, app, "errors")
    everything = _matching(page)
    page.wait_for_timeout(1500)
    want = _rows_of(_bar(page, 2))
    _click_until_narrowed(page, 2, "", everything)
    _wait_matching(page, want)
    assert want < everything
    page.get_by_role("button", name="Clear filters").click()
    _wait_matching(page, everything)
    page.wait_for_timeout(1500)
    want = _rows_of(_bar(page, 0))
    _click_until_narrowed(page, 0, "", everything)
    _wait_matching(page, want)
    page.get_by_text(re.compile("the bar clicked in the chart")).wait_for(timeout=30_000)


def test_clicking_a_severity_bar_filters_the_table_to_it(page, app):
    """A click on the critical bar of By severity narrows the table to critical rows."""
    goto(page, app, "errors")
    everything = _matching(page)
    page.wait_for_timeout(1500)
    critical = _click_until_narrowed(page, 1, "severity: critical;", everything)
    assert 0 < critical < everything
