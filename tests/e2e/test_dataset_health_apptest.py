"""Dataset health on the Conversations page and on a batch's detail; the Conversations page's dataset export."""

from __future__ import annotations

import json
import re

from dataset_support import insert, row
from e2e_data import listed, open_export, shown

from core.conversations import ConversationFilter
from core.datasets import dataset_health, distinct_n

HOSTILE = "<img src=x onerror=alert(1)> **bold**"


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at) -> list[tuple[str, list[dict]]]:
    """Each Vega-Lite chart's title and its rows (Streamlit sends inline values as an Arrow table)."""
    import pyarrow as pa

    return [(json.loads(e.proto.spec)["title"]["text"], pa.ipc.open_stream(e.proto.data.data).read_all().to_pylist())
            for e in at.get("vega_lite_chart")]


def _seed(engine, batch_id: str | None = None) -> list[dict]:
    """Three accepted, two needing review, one rejected duplicate; one persona is hostile text."""
    return insert(engine, [
        row(0, score=95, persona=HOSTILE, batch_id=batch_id, answer="the cat sat on the mat"),
        row(1, score=85, batch_id=batch_id, answer="the cat sat"),
        row(2, score=85, batch_id=batch_id, answer="a dog ran"),
        row(3, status="needs_review", score=55, batch_id=batch_id),
        row(4, status="needs_review", score=55, batch_id=batch_id),
        row(5, status="rejected", score=10, duplicate_of="d" * 36, batch_id=batch_id)])


def test_the_conversations_page_shows_the_health_of_the_filtered_set(open_page, engine):
    """Cards count each review state, the duplicate rate and distinct-n; the charts hold the same counts."""
    rows = _seed(engine)
    at = open_page("conversations")
    assert not at.exception, at.exception
    cards = _metrics(at)
    # the seeded single generation is the seventh, needing review and not scored
    assert (cards["Conversations"], cards["Accepted"], cards["Needs review"], cards["Rejected"]) == ("7", "3", "3", "1")
    assert cards["Duplicate rate"] == "14.3%"
    answers = [r["turns"][1]["content"] for r in rows] + ["Let me check that for you."]
    assert cards["Distinct-1"] == f"{distinct_n(answers, 1):.2f}" and cards["Distinct-2"] == f"{distinct_n(answers, 2):.2f}"
    (states_title, states), (scores_title, scores) = _charts(at)
    assert (states_title, scores_title) == ("Review states", "Quality score")
    assert {v["state"]: v["n"] for v in states} == {"accepted": 3, "needs review": 3, "rejected": 1, "regenerate": 0}
    bins = {v["bin"]: v["n"] for v in scores}
    assert (bins["90-100"], bins["80-89"], bins["50-59"], bins["10-19"], bins["not scored"]) == (1, 2, 2, 1, 1)
    # counted at most once a refresh interval, and it says so (a running batch's newest may not be in yet)
    counted = [c for c in (shown(c.value) for c in at.caption) if c.startswith("Counted ")]
    assert len(counted) == 1 and re.fullmatch(r"Counted \d{1,2} s ago; counted again every 30 s\.", counted[0]), counted


def test_the_coverage_grid_counts_accepted_of_all_per_cell_and_shows_hostile_text_as_a_cell(open_page, engine):
    """The coverage grid is the batch grid's table: accepted / conversations per persona x emotion and topic."""
    _seed(engine)
    at = open_page("conversations")
    grid = next(d.value for d in at.dataframe if "persona" in d.value.columns and "fees" in d.value.columns)
    cells = {(r["persona"], r["emotion"]): r["fees"] for _, r in grid.iterrows()}
    assert cells[(HOSTILE, "calm")] == "1/1"  # as text in the grid's cell, not markup
    assert cells[("persona 0", "calm")] == "0/1" and cells[("persona 1", "calm")] == "1/2"
    assert any("accepted / conversations per cell" in shown(e.proto.label) for e in at.expander)


def test_the_export_names_its_files_and_refuses_a_replacement_without_text(open_page, engine):
    """Format, split and system prompt choose the zip's files; 'replace' with no text is named and disables it."""
    _seed(engine)
    at = open_export(open_page)
    at.selectbox(key="conversations.format").set_value("hf")
    at.toggle(key="conversations.split_on").set_value(True).run()
    assert any("conversations.train.parquet, conversations.validation.parquet, conversations.card.md"
               in shown(c.value) for c in at.caption)
    at.radio(key="conversations.system_prompt").set_value("replace").run()
    assert not at.exception
    assert any("system_text: replacing the system prompt needs the text" in shown(e.value) for e in at.error)
    [button] = at.get("download_button")
    assert button.proto.disabled
    at.text_area(key="conversations.system_text").input("You are a tutor.").run()
    assert not at.error
    [button] = at.get("download_button")
    assert not button.proto.disabled and button.proto.label == "Download dataset"


def test_the_export_holds_what_the_page_chose(open_page, engine):
    """The export the page makes has the page's filter and choices (the zip itself: test_dataset_exports)."""
    _seed(engine)
    at = open_export(open_page)
    at.selectbox(key="conversations.status").set_value("needs_review").run()
    assert not at.exception
    assert any("conversations.jsonl, conversations.card.md" in shown(c.value) for c in at.caption)


def _said(at) -> str:
    return "\n".join(shown(m.value) for m in at.markdown)


def test_the_export_says_how_many_conversations_it_holds_and_how_the_split_shares_them(open_page, engine):
    """Before the download: how many of the filtered set the status takes, and about how many go to each side."""
    _seed(engine)  # with the seeded single generation: 3 accepted, 3 needing review, 1 rejected
    at = open_export(open_page)
    assert "The export holds **3 conversations accepted, of the 7 conversations the filters match**." in _said(at)
    at.toggle(key="conversations.split_on").set_value(True).run()
    at.slider(key="conversations.split").set_value(0.5).run()
    assert "about 2 for training and 1 for validation" in _said(at)
    assert "would be empty" not in _said(at)
    at.slider(key="conversations.split").set_value(0.95).run()  # 3 accepted: all of them on the train side
    assert ("about 3 for training and 0 for validation (duplicates stay together on one side, so the sides can "
            "differ from this by a few). At a train share of 0.95 the validation file would be empty: move the "
            "slider.") in _said(at)
    at.slider(key="conversations.split").set_value(0.5).run()
    at.selectbox(key="conversations.status").set_value("all").run()
    assert "The export holds **all 7 conversations the filters match**: about 4 for training and 3" in _said(at)
    [button] = at.get("download_button")
    assert not button.proto.disabled
    at.selectbox(key="conversations.format").set_value("hf").run()
    notes = [shown(c.value) for c in at.caption if "for a bigger set run" in shown(c.value)]
    # the command that writes this very export (format, status, split) whole, not a fixed example
    assert notes and ("python -m core conversations export --out conversations.parquet --format hf --status all "
                      "--split 0.5 --card") in notes[0]


def test_an_export_that_would_be_empty_says_which_statuses_hold_conversations_and_cannot_be_downloaded(
        open_page, engine, seeded):
    """Nothing accepted yet (the gate has not run): the page names what the filters do hold; no empty zip."""
    at = open_export(open_page)  # the seeded single generation only, needing review
    assert not at.exception
    assert any("No conversation the filters match is accepted (of 1 conversation: 1 needing review)"
               in shown(w.value) for w in at.warning)
    [button] = at.get("download_button")
    assert button.proto.disabled
    at.selectbox(key="conversations.status").set_value("needs_review").run()
    assert not any("No conversation the filters match" in shown(w.value) for w in at.warning)
    assert not at.get("download_button")[0].proto.disabled


def test_the_conversations_list_shows_each_review_state_and_score(open_page, engine):
    """A Review column: the state the gate or a reviewer left, and the score (or that there is none)."""
    rows = _seed(engine)
    at = open_page("conversations")
    [grid] = listed(at)
    review = dict(zip(grid.value["Id"], grid.value["Review"], strict=True))
    assert review[rows[0]["id"][:8]] == "accepted · 95" and review[rows[3]["id"][:8]] == "needs review · 55"
    assert review[rows[5]["id"][:8]] == "rejected · 10"
    assert sorted(review.values())[-1] == "rejected · 10" and "needs review · not scored" in review.values()


def test_a_batch_detail_shows_the_health_of_its_conversations(open_page, engine, seeded):
    """A batch's detail counts its own conversations only (the single generation is not in it)."""
    _seed(engine, batch_id=seeded["batch_id"])
    at = open_page("batches")
    at.button(key=f"batches.list_details_{seeded['batch_id']}").click().run()
    assert not at.exception, at.exception
    cards = _metrics(at)
    assert (cards["Conversations"], cards["Accepted"], cards["Needs review"]) == ("6", "3", "2")
    health = dataset_health(engine, ConversationFilter(batch_id=seeded["batch_id"]))
    assert cards["Duplicate rate"] == f"{health.duplicate_rate:.1%}"
    assert len(_charts(at)) == 2
