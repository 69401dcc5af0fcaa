"""The Review page in Chromium: a reviewer works through the queue by keyboard (a, r, e, j, k), nothing decided twice,
then downloads the accepted set from the Conversations page in each of the four formats, split and with its card,
and each file is read back by its consumer's library (json, `datasets`, csv).
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_app import SHOTS, RunningApp, open_expander
from e2e_data import shown
from people import person
from review_support import decisions, reviewed, stored

from core.auth import Role
from core.conversations import to_messages
from core.datasets import FORMAT_LABELS, SHAREGPT_ROLES
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


_BUTTON_OF_KEY = {"a": "accept", "r": "reject", "j": "next", "k": "prev", "e": "edit"}


def _press(page, key: str) -> None:
    """Press a shortcut once its button is drawn and enabled: on a loaded machine a key pressed before the
    button's shortcut is registered is lost (never pressed twice: a second "a" would accept the next one)."""
    button = page.locator(f".st-key-review-{_BUTTON_OF_KEY[key]} button:not([disabled])").first
    button.wait_for(timeout=30_000)
    page.keyboard.press(key)


def test_a_reviewer_reviews_three_conversations_by_keyboard_and_exports_the_accepted_ones(review_app, page, tmp_path):
    """a accepts, r rejects, j/k move, e opens the editor, a again: three decisions, each once, hostile text inert;
    then the accepted two, and nothing else, download in all four formats, split, each with a card counting them."""
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

    _press(page, "a")
    _at(page, "Conversation 1 of 3")
    _press(page, "r")
    _at(page, "Conversation 1 of 2")
    _press(page, "j")
    _at(page, "Conversation 2 of 2")
    _press(page, "k")
    _at(page, "Conversation 1 of 2")
    _press(page, "e")
    page.get_by_role("button", name="Save turn 2").wait_for(timeout=30_000)
    page.get_by_role("heading", level=1).first.click()
    _press(page, "a")
    _at(page, "Conversation 1 of 1")

    engine = create_store_engine(url)
    try:
        assert [reviewed(engine, i)["review_status"] for i in ids] == ["accepted", "rejected", "accepted",
                                                                      "needs_review"]
        assert sorted(d["conversation_id"] for d in decisions(engine)) == sorted(ids[:3])  # each decided once
        accepted = {i: reviewed(engine, i) for i in (ids[0], ids[2])}
        left_out = [reviewed(engine, i) for i in (ids[1], ids[3])]
    finally:
        engine.dispose()

    _open_export(page)
    page.screenshot(path=str(SHOTS / "review_export.png"), full_page=True)
    files = {fmt: _download(page, fmt, tmp_path) for fmt in ("openai", "sharegpt", "hf", "csv")}
    want = sorted(map(_key, (to_messages(r) for r in accepted.values())))
    for fmt, (names, sides, card) in files.items():
        assert names == _names(fmt), fmt
        assert all(sides.values()), f"{fmt}: a side of the split is empty: {sides}"  # a split of two at 0.5
        got = [m for side in sides.values() for m in side]
        assert sorted(_key(m) for _i, m in got) == want, fmt  # exactly the accepted conversations' messages
        if fmt in ("hf", "csv"):
            assert sorted(i for i, _m in got) == sorted(accepted), fmt
        for row in left_out:  # neither the rejected one nor the one still waiting
            assert row["turns"][0]["content"] not in json.dumps([m for _i, m in got], ensure_ascii=False), fmt
        assert "| accepted | 2 |" in card and "Total: 2." in card, card
        assert "| rejected |" not in card and "| needs_review |" not in card
        assert FORMAT_LABELS[fmt] in shown(card)  # the card of this export, not of the one before it
    assert alerts == []


def test_no_button_of_the_queue_has_its_label_cut_at_a_laptop_width(review_app, browser):
    """At 1024 px wide, the sidebar open, the bulk, move and decision buttons each show their whole label."""
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{review_app[0].url}/review")
        for key in ("bulk_accept", "bulk_reject", "prev", "next", "accept", "reject", "edit"):
            page.locator(f".st-key-review-{key} button").first.wait_for(timeout=60_000)
        page.evaluate("document.fonts.ready")
        cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMain"] button .stMarkdownEllipsis')]
            .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""")
        assert cut == []
    finally:
        context.close()


_STEMS = {"openai": ".jsonl", "sharegpt": ".jsonl", "hf": ".parquet", "csv": ".csv"}


def _names(fmt: str) -> list[str]:
    suffix = _STEMS[fmt]
    return ["conversations.card.md", f"conversations.train{suffix}", f"conversations.validation{suffix}"]


def _key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def _open_export(page) -> None:
    """From the Review page, through the sidebar, to the export: accepted only, a train/validation split at 0.5."""
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Conversations").click()
    page.get_by_role("heading", name="Conversations").wait_for(timeout=60_000)
    open_expander(page, "Export a dataset")
    _choose(page, "Review status", "Accepted only")
    _said(page, "The export holds 2 conversations accepted, of the 4 conversations the filters match.")
    page.get_by_text("Train / validation split").first.click()
    slider = page.get_by_role("slider", name="Train share", disabled=False)
    slider.wait_for(state="attached", timeout=60_000)
    slider.focus()
    for _ in range(8):  # 0.90 -> 0.50 in steps of 0.05: of two conversations, one on each side
        page.keyboard.press("ArrowLeft")
    _said(page, "about 1 for training and 1 for validation")  # the page has the new share


def _said(page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=60_000)


def _choose(page, box: str, option: str) -> None:
    page.get_by_role("combobox", name=box).click()
    page.get_by_role("option", name=option, exact=True).click()


def _download(page, fmt: str, tmp_path: Path) -> tuple[list[str], dict[str, list[tuple[str | None, Any]]], str]:
    """Choose `fmt`, download the zip, read each side with its consumer's library: (names, side -> (id, messages), card)."""
    open_expander(page, "Export a dataset")
    _choose(page, "Format", FORMAT_LABELS[fmt])
    _said(page, f"conversations.train{_STEMS[fmt]}, conversations.validation{_STEMS[fmt]}")
    folder = tmp_path / fmt
    folder.mkdir()
    archive = folder / "dataset.zip"
    # OpenAI and ShareGPT files have the same names: until the page's rerun for the new format has
    # drawn its button, a click downloads the previous format's zip. Its card names the format, so a
    # zip of another format is fetched again, a few times (the file is checked below, whatever comes).
    for _ in range(10):
        with page.expect_download(timeout=60_000) as info:
            page.get_by_role("button", name="Download dataset").click()
        info.value.save_as(archive)
        with zipfile.ZipFile(archive) as zf:
            card = zf.read("conversations.card.md").decode("utf-8")
        if FORMAT_LABELS[fmt] in shown(card):
            break
        page.wait_for_timeout(1_000)
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        zf.extractall(folder)
    sides = {side: _read(fmt, folder / f"conversations.{side}{_STEMS[fmt]}") for side in ("train", "validation")}
    return names, sides, (folder / "conversations.card.md").read_text(encoding="utf-8")


def _read(fmt: str, path: Path) -> list[tuple[str | None, Any]]:
    """(id or None, chat messages) of each record, as its consumer reads the file."""
    if fmt == "openai":
        return [(None, json.loads(line)["messages"]) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "sharegpt":
        roles = {v: k for k, v in SHAREGPT_ROLES.items()}
        return [(None, [{"role": roles[t["from"]], "content": t["value"]} for t in json.loads(line)["conversations"]])
                for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "hf":
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
            os.environ.setdefault(name, "1")
        import datasets

        ds = datasets.load_dataset("parquet", data_files=str(path), split="train",
                                   cache_dir=str(path.parent / "hf-cache"))
        return [(r["id"], r["messages"]) for r in ds]
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["id"], json.loads(r["messages"])) for r in csv.DictReader(fh)]
