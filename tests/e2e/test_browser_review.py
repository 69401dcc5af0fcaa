"""The Review page in Chromium: a reviewer works through the queue by keyboard (a, r, e, j, k), nothing decided twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_app import SHOTS, RunningApp
from people import person
from review_support import decisions, reviewed, stored

from core.auth import Role
from core.store import create_store_engine, migrate

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)> **bold** sk-ant-api03-" + "x" * 40


@pytest.fixture(scope="module")
def review_app(tmp_path_factory) -> Iterator[tuple[RunningApp, list[str], str]]:
    """The app as reviewer r@example.com, with four conversations in the queue (the oldest with hostile text)."""
    data = tmp_path_factory.mktemp("review_app")
    url = f"sqlite:///{data / 'studio.db'}"
    engine = create_store_engine(url)
    migrate(engine, force=True)
    person(engine, "r@example.com", Role.REVIEWER)
    ids = stored(engine, None, 1, failed=("meta_text",), turns=[
        {"role": "user", "content": HOSTILE}, {"role": "assistant", "content": "Sure."}])
    ids += stored(engine, None, 3, start=1)
    engine.dispose()
    running = RunningApp(data, STUDIO_USER="r@example.com").start()
    yield running, ids, url
    running.stop()


@pytest.fixture(scope="module")
def app(review_app):  # the shared `page` fixture opens this module's app
    return review_app[0]


def _at(page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=30_000)


def test_a_reviewer_reviews_three_conversations_by_keyboard(review_app, page):
    """a accepts, r rejects, j/k move, e opens the editor, a again: three decisions, each once, hostile text inert."""
    running, ids, url = review_app
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto(f"{running.url}/review")
    _at(page, "Conversation 1 of 4")
    hostile = page.get_by_text("<img src=x onerror=alert(1)> **bold** [REDACTED]")
    hostile.first.wait_for(timeout=30_000)  # the chat may draw after the caption on a loaded machine
    assert hostile.count() == 1
    assert page.locator("img[src='x']").count() == 0
    page.screenshot(path=str(SHOTS / "review_queue.png"), full_page=True)
    page.get_by_role("heading", level=1).first.click()  # the keys go to the page, not a field

    page.keyboard.press("a")
    _at(page, "Conversation 1 of 3")
    page.keyboard.press("r")
    _at(page, "Conversation 1 of 2")
    page.keyboard.press("j")
    _at(page, "Conversation 2 of 2")
    page.keyboard.press("k")
    _at(page, "Conversation 1 of 2")
    page.keyboard.press("e")
    page.get_by_role("button", name="Save turn 2").wait_for(timeout=30_000)
    page.get_by_role("heading", level=1).first.click()
    page.keyboard.press("a")
    _at(page, "Conversation 1 of 1")

    engine = create_store_engine(url)
    try:
        assert [reviewed(engine, i)["review_status"] for i in ids] == ["accepted", "rejected", "accepted",
                                                                      "needs_review"]
        assert sorted(d["conversation_id"] for d in decisions(engine)) == sorted(ids[:3])  # each decided once
    finally:
        engine.dispose()
    assert alerts == []
