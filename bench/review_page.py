"""Review page benchmark: the time from a key press to the next conversation on screen, in headless Chromium.

    .venv/bin/python bench/review_page.py [--queue 2000] [--presses 20] [--shot FILE.png]

Seeds `--queue` conversations that need review (the oldest with hostile text in a turn: HTML, Markdown
and a key-shaped string) into a fresh SQLite database, starts `streamlit run Home.py` as a reviewer,
opens the Review page, takes a screenshot of the first conversation, then times `--presses` presses
of j (Next) and of a (Accept), each from the key press until the heading names the new position.
Then the same j presses on Streamlit's own floor in the same run: a bare page whose Next button
(shortcut J) moves a counter in the same heading (see _FLOOR_SCRIPT), so on a shared machine the
figures read as a ratio. Target from the issue: next item < 300 ms. Not a test: prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

HOSTILE = "<img src=x onerror=alert(1)> **bold** sk-ant-api03-" + "x" * 40
TARGET_MS = 300
_FLOOR_SCRIPT = """
import streamlit as st

st.session_state.setdefault("n", 1)


def step():
    st.session_state.n += 1


st.title("Review")
st.markdown(f"**Conversation {st.session_state.n:,} of QUEUE** in the queue")
st.button("Next", shortcut="J", on_click=step)
"""


def _seed(data: Path, queue: int) -> None:
    import os

    os.environ["DATABASE_URL"] = f"sqlite:///{data / 'studio.db'}"
    os.environ["STUDIO_DATA_DIR"] = str(data)
    from people import person
    from review_support import stored

    from core.auth import Role
    from core.config import reload_settings
    from core.store import create_store_engine, migrate

    reload_settings()
    engine = create_store_engine(os.environ["DATABASE_URL"])
    migrate(engine, force=True)
    person(engine, "r@example.com", Role.REVIEWER)
    stored(engine, None, 1, failed=("meta_text",), score=47, duplicate_of="d" * 36, judge={
        "scores": {"realism": 2, "coherence": 4},
        "reasons": {"realism": "The user sounds scripted.", "coherence": "Follows on."}},
        turns=[{"role": "user", "content": HOSTILE},
               {"role": "assistant", "content": "I can help with that. **Not bold**, <b>not HTML</b>."}])
    stored(engine, None, queue - 1, start=1)
    engine.dispose()


def _heading(page) -> str:
    return page.get_by_text("in the queue").first.inner_text()


def _timed(page, key: str, expected: str) -> float:
    start = time.perf_counter()
    page.keyboard.press(key)
    page.get_by_text(expected).first.wait_for(timeout=30_000)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", type=int, default=2000)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--shot", type=Path, default=ROOT / "artifacts" / "screenshots" / "review.png")
    args = parser.parse_args()
    from browser_app import CHROMIUM, CHROMIUM_ARGS, RunningApp
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        _seed(data, args.queue)
        app = RunningApp(data, STUDIO_USER="r@example.com", STUDIO_UI_BACKGROUND_WORKER="false").start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                page.goto(f"{app.url}/review")
                page.get_by_text(f"Conversation 1 of {args.queue:,}").first.wait_for(timeout=60_000)
                page.wait_for_timeout(1500)  # the dataframes draw
                args.shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.shot), full_page=True)
                print(f"screenshot: {args.shot}")
                page.get_by_role("heading", level=1).first.click()  # focus the page, not a field
                nexts = [_timed(page, "j", f"Conversation {i + 2} of {args.queue:,}") for i in range(args.presses)]
                accepts = [_timed(page, "a", f"of {args.queue - i - 1:,} in") for i in range(args.presses)]
                app.stop()
                floor_script = data / "floor.py"
                floor_script.write_text(_FLOOR_SCRIPT.replace("QUEUE", f"{args.queue:,}"))
                app = RunningApp(data, script=str(floor_script)).start()
                page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                page.goto(app.url)
                page.get_by_text(f"Conversation 1 of {args.queue:,}").first.wait_for(timeout=60_000)
                page.get_by_role("heading", level=1).first.click()
                floor = [_timed(page, "j", f"Conversation {i + 2} of {args.queue:,}") for i in range(args.presses)]
                browser.close()
        finally:
            app.stop()
    for name, figures in (("next (j)", nexts), ("accept (a)", accepts), ("floor (j)", floor)):
        ordered = sorted(figures)
        p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
        print(f"{name:<11} median {statistics.median(figures):6.0f} ms  p95 {p95:6.0f} ms  "
              f"max {max(figures):6.0f} ms  over {len(figures)} presses (target < {TARGET_MS} ms), "
              f"queue of {args.queue:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
