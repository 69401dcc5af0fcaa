"""Trainer-ready exports on both engines, each read back by its consumer's own library.

OpenAI/Anthropic chat JSONL and ShareGPT through `datasets.load_dataset("json")`, the Hugging Face
export through `load_dataset("parquet")`, CSV through the csv module: the exact rows (order aside),
the status filter, the system-prompt policy, a split with no duplicate pair across it, and a card
whose numbers are the rows'.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from audit_support import audit_rows
from cli_runner import run_cli
from dataset_support import decide, insert, row
from people import person

from core.auth import Role
from core.auth.audit import AuditAction
from core.conversations import ConversationFilter
from core.datasets import DatasetExport, ExportSpec, card_path, side_path

HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://evil.invalid) | pipe"


def _load_json(path: Path, cache: Path) -> list[dict]:
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache)).to_list()


def _load_parquet(path: Path, cache: Path) -> list[dict]:
    from datasets import load_dataset

    return load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(cache)).to_list()


def _expected_messages(r: dict, system: str | None = "keep") -> list[dict]:
    msgs = [{"role": "system", "content": r["system_prompt"]}] if r["system_prompt"] and system == "keep" else []
    return msgs + [{"role": t["role"], "content": t["content"]} for t in r["turns"]]


def _key(msgs: list[dict]) -> str:
    return json.dumps(msgs, sort_keys=True)


def _mixed(engine) -> dict[str, list[dict]]:
    """Five accepted, three needing review, two rejected conversations."""
    rows = insert(engine, [row(i, status=s) for i, s in enumerate(["accepted"] * 5 + ["needs_review"] * 3
                                                                    + ["rejected"] * 2)])
    return {s: [r for r in rows if r["review_status"] == s] for s in ("accepted", "needs_review", "rejected")}


def test_openai_jsonl_reads_back_with_datasets_as_exactly_the_accepted_rows(engine, tmp_path):
    """The default export holds the accepted conversations only, each {"messages": [...]}, system prompt first."""
    by = _mixed(engine)
    out = tmp_path / "data.jsonl"
    result = DatasetExport(engine, spec=ExportSpec(format="openai")).write(out)
    back = _load_json(out, tmp_path / "hf")
    assert result.files == [out] and result.total == 5
    assert all(set(r) == {"messages"} for r in back)
    assert sorted(_key(r["messages"]) for r in back) == sorted(_key(_expected_messages(r)) for r in by["accepted"])


def test_sharegpt_reads_back_with_human_and_gpt_turns(engine, tmp_path):
    """ShareGPT lines carry from system/human/gpt and the same texts, in order."""
    by = _mixed(engine)
    out = tmp_path / "data.jsonl"
    DatasetExport(engine, spec=ExportSpec(format="sharegpt", status="needs_review")).write(out)
    back = _load_json(out, tmp_path / "hf")
    roles = {"system": "system", "user": "human", "assistant": "gpt"}
    expected = sorted(_key([{"from": roles[m["role"]], "value": m["content"]} for m in _expected_messages(r)])
                      for r in by["needs_review"])
    assert sorted(_key(r["conversations"]) for r in back) == expected


def test_hf_parquet_loads_with_datasets_with_messages_and_metadata(engine, tmp_path):
    """The Hugging Face export is Parquet that load_dataset reads: one row per conversation, ids and scores intact."""
    by = _mixed(engine)
    out = tmp_path / "data.parquet"
    DatasetExport(engine, spec=ExportSpec(format="hf", status="all")).write(out)
    back = _load_parquet(out, tmp_path / "hf")
    rows = [*by["accepted"], *by["needs_review"], *by["rejected"]]
    assert sorted(r["id"] for r in back) == sorted(r["id"] for r in rows)
    seeded = {r["id"]: r for r in rows}
    for got in back:
        want = seeded[got["id"]]
        assert got["messages"] == _expected_messages(want)
        assert (got["review_status"], got["quality_score"], got["template_version"], got["persona"]) == (
            want["review_status"], want["quality_score"], 1, want["params"]["persona"])


def test_an_empty_hf_export_is_still_a_dataset_file_with_its_columns(engine, tmp_path):
    """No matching row: a Parquet file of zero rows carrying the dataset's features, not an error.

    (load_dataset itself refuses a split of no rows, so the file is read with pyarrow, as datasets does.)
    """
    import pyarrow.parquet as pq
    from datasets import Features

    out = tmp_path / "none.parquet"
    DatasetExport(engine, spec=ExportSpec(format="hf")).write(out)
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert {"id", "messages", "quality_score"} <= set(Features.from_arrow_schema(table.schema))


def test_csv_reads_back_with_the_csv_module_cells_made_safe(engine, tmp_path):
    """CSV: a header, one row per rejected conversation, messages as JSON, a formula-like persona quoted."""
    rows = insert(engine, [row(0, status="rejected", persona="=HYPERLINK(\"x\")"), row(1, status="rejected"),
                           row(2)])
    out = tmp_path / "data.csv"
    DatasetExport(engine, spec=ExportSpec(format="csv", status="rejected")).write(out)
    with out.open(encoding="utf-8", newline="") as fh:
        back = list(csv.DictReader(fh))
    assert sorted(r["id"] for r in back) == sorted(r["id"] for r in rows[:2])
    by_id = {r["id"]: r for r in back}
    assert by_id[rows[0]["id"]]["persona"] == "'=HYPERLINK(\"x\")"
    assert json.loads(by_id[rows[1]["id"]]["messages"]) == _expected_messages(rows[1])
    assert by_id[rows[1]["id"]]["review_status"] == "rejected" and by_id[rows[1]["id"]]["quality_score"] == "80"


@pytest.mark.parametrize(("status", "expected"), [("accepted", 5), ("needs_review", 3), ("rejected", 2), ("all", 10)])
def test_the_status_filter_exports_only_that_status(engine, tmp_path, status, expected):
    """Each status (and all) exports exactly its conversations."""
    by = _mixed(engine)
    out = tmp_path / "data.jsonl"
    DatasetExport(engine, spec=ExportSpec(status=status)).write(out)
    texts = {json.loads(line)["messages"][-1]["content"] for line in out.read_text(encoding="utf-8").splitlines()}
    rows = [r for s, rs in by.items() if status in (s, "all") for r in rs]
    assert len(texts) == expected and texts == {r["turns"][-1]["content"] for r in rows}


def test_the_system_prompt_is_kept_dropped_or_replaced(engine, tmp_path):
    """drop leaves no system message; replace puts the export's text first in every conversation."""
    insert(engine, [row(i) for i in range(3)] + [row(3, system_prompt=None)])
    dropped, replaced = tmp_path / "d.jsonl", tmp_path / "r.jsonl"
    DatasetExport(engine, spec=ExportSpec(system_prompt="drop")).write(dropped)
    DatasetExport(engine, spec=ExportSpec(system_prompt="replace", system_text="You are a tutor.")).write(replaced)
    d = [r["messages"] for r in _load_json(dropped, tmp_path / "hf")]
    r = [r["messages"] for r in _load_json(replaced, tmp_path / "hf")]
    assert len(d) == len(r) == 4
    assert all(m["role"] != "system" for msgs in d for m in msgs)
    assert all(msgs[0] == {"role": "system", "content": "You are a tutor."} and msgs[1]["role"] == "user" for msgs in r)


def _duplicate_groups(engine) -> tuple[list[dict], list[set[str]]]:
    """40 accepted conversations: chains of duplicate_of links, shared hashes, and a link through a rejected one."""
    rows = [row(i) for i in range(40)]
    ids = [r["id"] for r in rows]
    for i in (1, 2, 3):  # 1, 2, 3 duplicate 0 (a chain: 3 -> 2)
        rows[i]["duplicate_of"] = ids[i - 1]
    rows[5]["content_hash"] = rows[4]["content_hash"]  # exact duplicates by hash only
    rows[6]["content_hash"] = rows[4]["content_hash"]
    hidden = row(99, status="rejected")  # not exported, but 7 and 8 both duplicate it
    rows[7]["duplicate_of"] = rows[8]["duplicate_of"] = hidden["id"]
    hidden["duplicate_of"] = ids[9]  # ... and it duplicates 9: 7, 8 and 9 are one group
    insert(engine, [*rows, hidden])
    groups = [set(ids[0:4]), set(ids[4:7]), set(ids[7:10])]
    return rows, groups


def test_a_split_keeps_every_duplicate_group_on_one_side_at_the_ratio(engine, tmp_path):
    """Train and validation read back whole; no duplicate group is cut; train holds 0.9 x n, within one."""
    rows, groups = _duplicate_groups(engine)
    out = tmp_path / "data.jsonl"
    result = DatasetExport(engine, spec=ExportSpec(format="hf", split=0.9)).write(out.with_suffix(".parquet"))
    train = _load_parquet(side_path(out.with_suffix(".parquet"), "train"), tmp_path / "hf")
    valid = _load_parquet(side_path(out.with_suffix(".parquet"), "validation"), tmp_path / "hf")
    train_ids, valid_ids = {r["id"] for r in train}, {r["id"] for r in valid}
    assert train_ids | valid_ids == {r["id"] for r in rows} and not train_ids & valid_ids
    assert abs(len(train_ids) - 0.9 * len(rows)) <= 1
    for group in groups:
        assert group <= train_ids or group <= valid_ids, group
    assert result.rows == {"train": len(train_ids), "validation": len(valid_ids)}


def test_the_same_rows_give_the_same_split_every_time(engine, tmp_path):
    """The split is seeded by ids: two exports of the same rows put each conversation on the same side."""
    _duplicate_groups(engine)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        DatasetExport(engine, spec=ExportSpec(split=0.75)).write(out)
    for side in ("train", "validation"):
        a = side_path(first, side).read_text(encoding="utf-8")
        assert a and a == side_path(second, side).read_text(encoding="utf-8")
    assert side_path(first, "train") == tmp_path / "a.train.jsonl"


def _table(card: str, heading: str) -> dict[str, str]:
    """The first column -> last column of the table under `heading` (cells as written)."""
    section = card.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {r[0].strip(): r[-1].strip() for r in rows[1:]}


def test_the_card_counts_what_the_files_hold(engine, tmp_path):
    """Counts, templates, models, parameters, scores, duplicates, decisions and tokens match the exported rows."""
    reviewer = person(engine, "rita@example.com", Role.REVIEWER)
    rows = insert(engine, [row(0, score=95), row(1, score=42, model="claude-haiku-5"), row(2, score=None, version=2),
                           row(3, status="rejected", duplicate_of="x" * 36), row(4, status="accepted",
                                                                                  duplicate_of="y" * 36)])
    decide(engine, [(rows[0]["id"], "accepted", reviewer.user_id), (rows[1]["id"], "accepted", reviewer.user_id),
                    (rows[3]["id"], "rejected", reviewer.user_id)])
    out = tmp_path / "data.jsonl"
    result = DatasetExport(engine, spec=ExportSpec(card=True, split=0.5)).write(out)
    card = card_path(out).read_text(encoding="utf-8")
    exported = [r for r in rows if r["review_status"] == "accepted"]
    assert result.files[-1] == tmp_path / "data.card.md"
    counts = _table(card, "Counts")
    assert int(counts["train"]) + int(counts["validation"]) == 4 == result.total
    assert {k: int(v) for k, v in counts.items() if k in ("train", "validation")} == result.rows
    assert _table(card, "Models") == {"claude\\-sonnet\\-5\\-5": "3", "claude\\-haiku\\-5": "1"}
    scores = _table(card, "Quality score")
    assert (scores["90\\-100"], scores["40\\-49"], scores["80\\-89"], scores["not scored"]) == ("1", "1", "1", "1")
    assert "| tutoring | 2 | 1 |" in card and "| tutoring | 1 | 3 |" in card
    assert "| persona 0 | calm | fees | 1 |" in card
    dup = _table(card, "Duplicates")
    assert list(dup.values()) == ["1", "1"]  # the rejected duplicate left out; the accepted one kept
    assert "| rita | accepted | 2 |" in card and "rejected" not in card.split("Decisions on these", 1)[1].split("##")[0]
    tokens = _table(card, "Tokens and cost")
    assert int(tokens["input tokens"].replace(",", "")) == sum(r["input_tokens"] for r in exported)
    assert float(tokens["generation cost \\(USD\\)"].replace(",", "")) == pytest.approx(
        sum(r["cost_usd"] for r in exported), abs=1e-4)
    assert "| status | accepted |" in card and "| split | 0\\.5 |" in card


def test_the_card_shows_hostile_text_as_text(engine, tmp_path):
    """A persona with HTML, Markdown and a table pipe is escaped: no tag, no link, no extra cell forms."""
    insert(engine, [row(0, persona=HOSTILE)])
    out = tmp_path / "data.jsonl"
    DatasetExport(engine, spec=ExportSpec(card=True)).write(out)
    card = card_path(out).read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)[<>\[\]*]", card.split("## Parameters", 1)[1].split("## Quality", 1)[0])
    assert "](http" not in card and "**bold**" not in card and "http://" not in card
    line = next(line for line in card.splitlines() if "img" in line)
    assert line.startswith("| \\<img src\\=x onerror\\=alert\\(1\\)\\> \\*\\*bold\\*\\*")
    assert len(re.findall(r"(?<!\\)\|", line)) == 5  # four cells: the persona's pipe is escaped


def test_the_card_repeats_no_secret_a_persona_carried(engine, tmp_path):
    """A key pasted into a persona is redacted in the card (before the cell is cut), the rest of the text kept."""
    from redaction_cases import ANTHROPIC_KEY

    insert(engine, [row(0, persona=f"nurse {ANTHROPIC_KEY} at night")])
    out = tmp_path / "data.jsonl"
    DatasetExport(engine, spec=ExportSpec(card=True)).write(out)
    card = card_path(out).read_text(encoding="utf-8")
    assert ANTHROPIC_KEY[:20] not in card.replace("\\", "") and "nurse" in card and "at night" in card


def test_a_download_is_a_zip_of_the_files_and_the_card_cut_at_the_limit(engine, tmp_path):
    """archive() holds the split files and the card; under a byte limit only whole rows, and the audit says so."""
    insert(engine, [row(i) for i in range(10)])
    export = DatasetExport(engine, spec=ExportSpec(split=0.8), via="download")
    whole = zipfile.ZipFile(io.BytesIO(export.archive()))
    assert sorted(whole.namelist()) == sorted(export.file_names()) == [
        "conversations.card.md", "conversations.train.jsonl", "conversations.validation.jsonl"]
    line = len(whole.read("conversations.train.jsonl").splitlines()[0]) + 1
    cut = zipfile.ZipFile(io.BytesIO(export.archive(limit_bytes=3 * line + 2)))
    lines = sum(len(cut.read(n).splitlines()) for n in cut.namelist() if n.endswith(".jsonl"))
    assert lines == 3 and "cut at the download limit" in cut.read("conversations.card.md").decode()
    audits = audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS)
    assert [(a["detail"]["rows"], a["detail"]["complete"], a["detail"]["via"]) for a in audits] == [
        (10, True, "download"), (3, False, "download")]


def test_the_cli_writes_each_format_and_the_card_and_audits_it(engine, tmp_path):
    """`conversations export` with --split and --card names its files; the old jsonl name is openai."""
    _mixed(engine)
    out = tmp_path / "set.jsonl"
    run = run_cli(["conversations", "export", "--out", str(out), "--format", "jsonl", "--split", "0.8", "--card"])
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "set.train.jsonl").exists() and (tmp_path / "set.validation.jsonl").exists()
    assert (tmp_path / "set.card.md").exists() and "exported 5 conversations (openai, status accepted)" in run.stderr
    assert not list(tmp_path.glob("*.part"))
    one = json.loads((tmp_path / "set.train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(one) == {"messages"}
    [audit] = audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS)
    assert audit["detail"]["format"] == "openai" and audit["detail"]["split"] == 0.8
    assert audit["detail"]["sides"] == {"train": 4, "validation": 1}
    run = run_cli(["conversations", "export", "--out", str(tmp_path / "x.parquet"), "--status", "all"])
    assert run.returncode == 0, run.stderr and "(hf, status all)" in run.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--split", "1.5"], "argument --split: the train share must be between 0 and 1"),
    (["--split", "nan"], "argument --split: the train share must be between 0 and 1"),
    (["--split", "x"], "argument --split: 'x' is not a number"),
    (["--format", "parquet"], "argument --format: invalid choice"),
    (["--status", "maybe"], "argument --status: invalid choice"),
    (["--system-prompt", "replace"], "argument --system-text: replacing the system prompt needs the text"),
    (["--system-text", "Hi"], "argument --system-text: a replacement text is used only with"),
    (["--out", "-", "--card"], "argument --out: '-' streams one text file"),
    (["--out", "-", "--format", "hf"], "argument --out: '-' streams one text file"),
])
def test_bad_export_arguments_exit_2_naming_the_option_and_why(engine, tmp_path, args, says):
    """Each refused argument exits 2 with the option and the reason, and writes nothing."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = ["--out", str(folder / "x.jsonl")] if "--out" not in args else []
    run = run_cli(["conversations", "export", *out, *args])
    assert run.returncode == 2 and says in run.stderr, run.stderr
    assert not list(folder.iterdir())


def test_an_empty_export_by_status_says_which_statuses_hold_conversations(engine, tmp_path):
    """No accepted conversation yet (the gate has not run): the CLI says how many of each other status match."""
    insert(engine, [row(0, status="needs_review"), row(1, status="needs_review"), row(2, status="rejected")])
    run = run_cli(["conversations", "export", "--out", str(tmp_path / "x.jsonl")])
    assert run.returncode == 0 and "exported 0 conversations" in run.stderr
    assert "note: no accepted conversation matches; 2 needs_review, 1 rejected do (--status all" in run.stderr


def test_the_cli_streams_one_text_file_to_stdout(engine):
    """--out - writes the JSONL lines to stdout, nothing else."""
    _mixed(engine)
    run = run_cli(["conversations", "export", "--out", "-", "--format", "sharegpt"])
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 5 and all(set(r) == {"conversations"} for r in lines)


def test_an_export_filtered_by_batch_and_status_holds_only_those(engine, tmp_path):
    """The conversation filter (template) and the status combine."""
    insert(engine, [row(0, template="tutoring"), row(1, template="customer_support"),
                    row(2, template="tutoring", status="rejected")])
    out = tmp_path / "t.jsonl"
    result = DatasetExport(engine, ConversationFilter(template="tutoring"), ExportSpec()).write(out)
    assert result.total == 1 and "answer 0" in out.read_text(encoding="utf-8")
