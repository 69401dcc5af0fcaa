"""Conversation listing and export on both engines: server-side pages, streamed JSONL and CSV, filters."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta

from core.batches.service import create_batch
from core.conversations import ConversationFilter, list_conversations
from core.datasets import DatasetExport, ExportSpec
from core.store.schema import conversations, utcnow
from core.store.tx import write_tx


def iter_jsonl(engine, flt: ConversationFilter | None = None):
    """The chat JSONL lines of every conversation (any review status) the filter matches."""
    return DatasetExport(engine, flt, ExportSpec(status="all")).lines()


def iter_csv(engine):
    return DatasetExport(engine, None, ExportSpec(format="csv", status="all")).lines()


def _seed(engine, n: int, batch_id: str | None = None) -> None:
    base = utcnow() - timedelta(hours=1)
    rows = [{
        "id": str(uuid.uuid4()), "batch_id": batch_id, "item_index": i if batch_id else None,
        "template": "tutoring", "model": "m", "params": {"persona": f"p{i}", "emotion": "e", "topic": "t"},
        "system_prompt": "Be kind.", "turns": [{"role": "user", "content": f"q{i}"},
                                               {"role": "assistant", "content": f"a{i}, \"quoted\"\nline"}],
        "turn_count": 2, "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0, "status": "ok",
        # several rows share a timestamp, so paging must break ties by id
        "created_at": base + timedelta(seconds=i // 3), "error_count": 0, "is_recovering": False,
        "recovery_attempts": 0} for i in range(n)]
    with write_tx(engine) as conn:
        conn.execute(conversations.insert(), rows)


def test_jsonl_streams_every_conversation_once_in_chat_format(engine):
    """1,100 conversations (more than one read chunk) export as 1,100 distinct lines, system prompt first."""
    _seed(engine, 1_100)
    lines = [json.loads(line) for line in iter_jsonl(engine)]
    assert len(lines) == 1_100
    assert len({m["messages"][1]["content"] for m in lines}) == 1_100
    first = lines[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"] and first[0]["content"] == "Be kind."


def test_filters_and_pages(engine):
    """A batch filter exports only that batch; pages are newest first and count the total on the server."""
    bid = create_batch(engine, template="tutoring", count=5)
    _seed(engine, 5, batch_id=bid)
    _seed(engine, 7)
    only = ConversationFilter(batch_id=bid)
    assert sum(1 for _ in iter_jsonl(engine, only)) == 5
    page = list_conversations(engine, ConversationFilter(), page=2, page_size=5)
    assert (page.total, page.pages, len(page.rows)) == (12, 3, 5)
    newest = list_conversations(engine, page=1, page_size=12).rows
    assert [r["created_at"] for r in newest] == sorted((r["created_at"] for r in newest), reverse=True)


def test_csv_export_quotes_text_and_has_a_header(engine):
    """The CSV export has a header and one parseable row per conversation, quotes and newlines intact."""
    _seed(engine, 3)
    rows = list(csv.reader(io.StringIO("".join(iter_csv(engine)))))
    assert rows[0][:3] == ["id", "created_at", "batch_id"] and len(rows) == 4
    col = rows[0].index("messages")
    answers = sorted(json.loads(row[col])[2]["content"] for row in rows[1:])
    assert answers == [f'a{i}, "quoted"\nline' for i in range(3)]
