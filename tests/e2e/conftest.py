"""Fixtures for the app tests: a seeded store and an AppTest of the real entrypoint; the app in Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_app import CHROMIUM, CHROMIUM_ARGS, RunningApp
from e2e_data import insert_conversation
from streamlit.testing.v1 import AppTest

from core.config import ROOT, reload_settings

APP_TIMEOUT_S = 60  # the first run imports pandas and the SDK
SEEDED_ERRORS = 120  # error rows in the browser tests' store before their app starts


@pytest.fixture
def app_env(monkeypatch) -> None:
    """No background worker (tests drive batches themselves); retries stay instant."""
    monkeypatch.setenv("STUDIO_UI_BACKGROUND_WORKER", "false")
    monkeypatch.setenv("STUDIO_ALERT_POLL_INTERVAL_S", "3600")
    reload_settings()


@pytest.fixture
def seeded(engine, app_env) -> dict:
    """200 synthetic error rows, one 3-item batch and one conversation."""
    from core.batches import service
    from core.errorlog.seed import seed_errors
    from core.generation import template_names

    seed_errors(engine, 200, days=2)
    template = template_names()[0]
    batch_id = service.create_batch(engine, template=template, count=3)
    conversation_id = insert_conversation(engine)
    return {"batch_id": batch_id, "conversation_id": conversation_id, "template": template}


@pytest.fixture
def open_page(seeded) -> Callable[[str], AppTest]:
    """Run the entrypoint, then switch to `app_pages/<name>.py` and run it (as st.navigation would)."""

    def _open(name: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
        at.run()
        assert not at.exception, at.exception
        if name != "home":
            at.switch_page(f"app_pages/{name}.py").run()
        return at

    return _open


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    """One running app per browser test module, its database seeded with error rows before it starts."""
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
def browser(app) -> Iterator[Any]:
    """Debian's Chromium, headless, for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# at most this many browser test modules (a Streamlit server and a Chromium each) run at once across
# the xdist workers: four at once loaded two cores past what their waits allow, and a different one
# timed out in each loaded CI run. A module waits at most BROWSER_SLOT_WAIT_S for a slot, then runs.
BROWSER_SLOTS = 2
BROWSER_SLOT_WAIT_S = 200


@pytest.fixture(scope="module", autouse=True)
def browser_slot(request) -> Iterator[None]:
    """Hold one of BROWSER_SLOTS lock files while a browser module runs (nothing for other modules)."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    import fcntl
    import time

    folder = request.config.cache.mkdir("browser-slots")
    deadline = time.monotonic() + BROWSER_SLOT_WAIT_S
    held = None
    while held is None:
        for n in range(BROWSER_SLOTS):
            fh = open(folder / f"slot-{n}", "w")  # noqa: SIM115 - held open for the module
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            held = fh
            break
        if held is None:
            if time.monotonic() > deadline:
                break  # run anyway: a slow neighbour must not time this module out
            time.sleep(0.5)
    try:
        yield
    finally:
        if held is not None:
            held.close()  # closing the file releases its lock


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test, so `page` can tell that its test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser, app) -> Iterator[Any]:
    """A fresh browser context and page for each test (downloads accepted).

    When the test fails, what the page showed is kept for whoever reads the failure: a screenshot,
    the page's text and the end of the app's log, under artifacts/failures/.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = ROOT / "artifacts" / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        stem = request.node.name.replace("/", "_")[:120]
        try:
            pg.screenshot(path=str(folder / f"{stem}.png"), full_page=True)
            text = pg.inner_text("body", timeout=5_000)
        except Exception as exc:  # noqa: BLE001 - the page may be gone; the failure itself is what matters
            text = f"(the page could not be read: {exc})"
        log = getattr(app, "log", str)()
        (folder / f"{stem}.txt").write_text(f"{pg.url}\n\n{text}\n\n--- app log ---\n{log}", encoding="utf-8")
        print(f"\nbrowser failure kept in artifacts/failures/{stem}.png and .txt; the page showed:\n{text[:3000]}")
    context.close()
