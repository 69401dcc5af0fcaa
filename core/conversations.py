"""Saved conversations: list them a page at a time, and export them as fine-tuning JSONL or CSV.

The export streams: rows are read from the store in chunks and written one line at a
time, so a million conversations never sit in memory. The UI's download and the CLI's
`python -m core conversations export` use these same functions.

JSONL line (the chat-messages fine-tuning format):
    {"messages": [{"role": "system", "content": ...}, {"role": "user", ...}, {"role": "assistant", ...}, ...]}
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.csv_cells import safe_cell
from core.resilience import run_db
from core.store.paging import Page
from core.store.schema import conversations
from core.store.tx import write_tx

__all__ = ["ConversationFilter", "Page", "delete_draft_conversation", "get_conversation", "iter_csv", "iter_jsonl",
           "list_conversations", "to_messages"]

_CHUNK = 500
CSV_COLUMNS = ("id", "created_at", "batch_id", "item_index", "draft_id", "template", "model", "persona",
               "emotion", "topic", "turn_count", "input_tokens", "output_tokens", "cost_usd", "messages")


@dataclass(frozen=True)
class ConversationFilter:
    batch_id: str | None = None
    template: str | None = None
    created_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    draft_only: bool = False  # single generations (from drafts), not batch items

    def where(self) -> list[sa.ColumnElement[bool]]:
        cond: list[sa.ColumnElement[bool]] = []
        if self.batch_id:
            cond.append(conversations.c.batch_id == self.batch_id)
        if self.template:
            cond.append(conversations.c.template == self.template)
        if self.created_by:
            cond.append(conversations.c.created_by == self.created_by)
        if self.since:
            cond.append(conversations.c.created_at >= self.since)
        if self.until:
            cond.append(conversations.c.created_at < self.until)
        if self.draft_only:
            cond.append(conversations.c.batch_id.is_(None))
        return cond


def to_messages(row: Any) -> list[dict[str, str]]:
    """System prompt first, then the turns, as role/content pairs."""
    messages = [{"role": "system", "content": row["system_prompt"] or ""}] if row["system_prompt"] else []
    messages.extend({"role": t["role"], "content": t["content"]} for t in (row["turns"] or []))
    return messages


def list_conversations(engine: Engine, flt: ConversationFilter | None = None, page: int = 1,
                       page_size: int = 50) -> Page:
    """One page of conversations (newest first) and the total that match, paged on the server."""
    flt = flt or ConversationFilter()
    page, page_size = max(1, int(page)), max(1, min(int(page_size), 1_000))
    where = flt.where()
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(conversations).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(conversations).where(*where)
            .order_by(conversations.c.created_at.desc(), conversations.c.id)
            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([dict(r) for r in rows], int(total), page, page_size)


def get_conversation(engine: Engine, conversation_id: str) -> dict[str, Any] | None:
    """One saved conversation by id, or None when it is not there (any more)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id)).mappings().first()
    return dict(row) if row is not None else None


def delete_draft_conversation(engine: Engine, conversation_id: str, draft_id: str) -> bool:
    """Remove the conversation a single generation saved: only when it is still that draft's; whether it went."""
    def _delete() -> bool:
        with write_tx(engine) as conn:
            return bool(conn.execute(conversations.delete().where(
                conversations.c.id == conversation_id, conversations.c.draft_id == draft_id)).rowcount)

    return run_db(_delete)


def _iter_rows(engine: Engine, flt: ConversationFilter | None) -> Iterator[Any]:
    """Matching rows oldest first, read in chunks by keyset (created_at, id) so memory stays flat."""
    flt = flt or ConversationFilter()
    where = flt.where()
    last: tuple[datetime, str] | None = None
    order = (conversations.c.created_at, conversations.c.id)
    while True:
        query = sa.select(conversations).where(*where).order_by(*order).limit(_CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(last[0], conversations.c.created_at.type),
                                                              sa.literal(last[1])))
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        yield from rows
        if len(rows) < _CHUNK:
            return
        last = (rows[-1]["created_at"], rows[-1]["id"])


def iter_jsonl(engine: Engine, flt: ConversationFilter | None = None) -> Iterator[str]:
    """One JSON line (with its newline) per matching conversation: {"messages": [...]}."""
    for row in _iter_rows(engine, flt):
        yield json.dumps({"messages": to_messages(row)}, ensure_ascii=False) + "\n"


def iter_csv(engine: Engine, flt: ConversationFilter | None = None) -> Iterator[str]:
    """The header line, then one CSV line per matching conversation (messages as a JSON cell)."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def _take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield _take()
    for row in _iter_rows(engine, flt):
        params = row["params"] or {}
        # persona, topic and model text are untrusted: quoted like the error export's cells
        writer.writerow([safe_cell(v) for v in (
            row["id"], row["created_at"], row["batch_id"], row["item_index"], row["draft_id"], row["template"],
            row["model"], params.get("persona", ""), params.get("emotion", ""), params.get("topic", ""),
            row["turn_count"], row["input_tokens"], row["output_tokens"], row["cost_usd"],
            json.dumps(to_messages(row), ensure_ascii=False))])
        yield _take()
