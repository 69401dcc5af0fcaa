"""Both CSV exports (conversations, error log) make cells safe for spreadsheets with one helper."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from core.csv_cells import safe_cell
from core.datasets import DatasetExport, ExportSpec
from core.errorlog.export import iter_csv_chunks
from core.store.schema import conversations, error_logs, utcnow
from core.store.tx import write_tx

RISKY = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tindent", "\rreturn"]


def _conversation(persona: str, emotion: str = "calm", topic: str = "fees", model: str = "m") -> dict:
    return {
        "id": str(uuid.uuid4()), "template": "tutoring", "model": model,
        "params": {"persona": persona, "emotion": emotion, "topic": topic}, "system_prompt": "Be kind.",
        "turns": [{"role": "user", "content": "=1+1"}, {"role": "assistant", "content": "2"}],
        "turn_count": 2, "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0, "status": "ok",
        "created_at": utcnow() - timedelta(minutes=1), "error_count": 0, "is_recovering": False,
        "recovery_attempts": 0}


def _error_row(message: str) -> dict:
    return {"error_id": uuid.uuid4().hex, "created_at": utcnow() - timedelta(minutes=1), "error_type": "api",
            "error_code": "bad_request", "severity": "error", "message": message, "fingerprint": "f" * 32,
            "is_recoverable": False, "recovered": False, "resolved": False, "component": "test"}


def iter_csv(engine):
    """The conversations CSV export, every review status."""
    return DatasetExport(engine, None, ExportSpec(format="csv", status="all")).lines()


def _records(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_conversation_cells_are_quoted_exactly_like_error_export_cells(engine):
    """Formula-like persona, emotion, topic and model cells get the same leading quote in both exports."""
    with write_tx(engine) as conn:
        conn.execute(conversations.insert(), [_conversation(v, emotion=v, topic=v, model=v[:60]) for v in RISKY])
        conn.execute(error_logs.insert(), [_error_row(v) for v in RISKY])
    convs = _records("".join(iter_csv(engine)))
    errors = _records("".join(iter_csv_chunks(engine, None)))
    by_persona = {r["persona"]: r for r in convs}
    error_cells = {r["message"] for r in errors}
    for value in RISKY:
        quoted = "'" + value
        assert quoted in by_persona, sorted(by_persona)
        row = by_persona[quoted]
        assert row["emotion"] == row["topic"] == quoted and row["model"] == "'" + value[:60]
        assert quoted in error_cells  # the error export's cell for the same text
    assert all(r["messages"].startswith("[") for r in convs)  # the turns cell is JSON, never a formula


def test_conversation_export_drops_nul_bytes(engine):
    """A NUL inside a persona or topic is dropped from the CSV cell (a spreadsheet would stop reading there)."""
    with write_tx(engine) as conn:
        conn.execute(conversations.insert(), [_conversation("nurse\x00 student", topic="\x00=cmd")])
    [row] = _records("".join(iter_csv(engine)))
    assert row["persona"] == "nurse student" and row["topic"] == "'=cmd"
    assert "\x00" not in "".join(row.values())


def test_the_shared_cell_helper_drops_nuls_before_it_looks_for_a_formula():
    """safe_cell removes NUL bytes and then quotes what a spreadsheet would read as a formula."""
    assert safe_cell("a\x00b") == "ab"
    assert safe_cell("\x00=1+1") == "'=1+1"
    assert safe_cell(None) == "" and safe_cell(True) == "true" and safe_cell({"a": 1}) == '{"a":1}'
