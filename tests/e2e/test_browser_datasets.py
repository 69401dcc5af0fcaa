"""The Conversations page's dataset health and export in Chromium, with hostile text in a persona.

Conversations whose persona is `<img src=x onerror=alert(1)>` and `**bold**` (and a few plain
ones) are in the store before the app starts. The page must show that text as text (no <img>
element, no bold, no dialog), draw the health charts, and download the zip of the chosen export:
the split files and the card, the card's persona escaped. Screenshots land in
artifacts/screenshots/datasets-*.png.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from browser_app import CHROMIUM, SHOTS, RunningApp, open_expander

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
BOLD = "**bold**"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run the README's test command (bash scripts/test.sh).")
    from dataset_support import insert, row

    from core.store import create_store_engine, migrate

    data = tmp_path_factory.mktemp("datasets")
    engine = create_store_engine(f"sqlite:///{data / 'studio.db'}")
    migrate(engine, force=True)
    insert(engine, [row(0, persona=IMG, score=92, answer=f"Hello {IMG}"), row(1, persona=BOLD, score=71),
                    *(row(i, score=min(40 + 10 * i, 100), status=("accepted", "needs_review", "rejected")[i % 3])
                      for i in range(2, 8))])
    engine.dispose()
    running = RunningApp(data).start()
    yield running
    running.stop()


def test_hostile_personas_show_as_text_beside_the_health_charts_and_the_export_downloads(page, app, tmp_path):
    """No element or dialog from the persona; both charts drawn; the zip holds the split files and an escaped card."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{app.url}/conversations")
    page.get_by_role("heading", name="Conversations").wait_for(timeout=60_000)
    page.get_by_text("Dataset health").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stVegaLiteChart"]').nth(1).wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"^Coverage \(accepted / conversations")).first.click()
    open_expander(page, "Export a dataset")
    page.wait_for_timeout(2500)  # the grid and the charts draw after the first paint
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "datasets-conversations.png"), full_page=True)
    assert page.locator("img[src='x'], img[onerror]").count() == 0
    assert page.locator("strong", has_text="bold").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    # the grid draws on a canvas: its accessible table holds the persona cell, as typed
    page.get_by_text(BOLD, exact=False).first.wait_for(state="attached", timeout=15_000)

    page.get_by_text("Train / validation split").first.click()
    page.get_by_text(re.compile(r"conversations\.train\.jsonl, conversations\.validation\.jsonl")).first.wait_for(
        timeout=30_000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)
    page.screenshot(path=str(SHOTS / "datasets-export.png"), full_page=True)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download dataset").click()
    path = tmp_path / "dataset.zip"
    info.value.save_as(path)
    zf = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    assert sorted(zf.namelist()) == ["conversations.card.md", "conversations.train.jsonl",
                                     "conversations.validation.jsonl"]
    lines = [json.loads(line) for name in zf.namelist() if name.endswith(".jsonl")
             for line in zf.read(name).decode().splitlines()]
    assert len(lines) == 4  # the accepted ones: 0, 1, 3 and 6
    card = zf.read("conversations.card.md").decode()
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>" in card and "\\*\\*bold\\*\\*" in card
    assert IMG not in card and f" {BOLD} " not in card
    assert dialogs == []
