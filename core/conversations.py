"""Saved conversations: list them a page at a time, read, delete, and export them as fine-tuning JSONL or CSV.

Every query carries the permissions module's condition for the actor (core.auth.permissions):
an analyst reaches their own conversations, a reviewer and an admin every one, and deleting is
the owner's (or an admin's). A conversation the actor may not see answers as one that does not
exist. A delete writes its audit row in its own transaction.

The export streams: rows are read from the store in chunks and written one line at a
time, so a million conversations never sit in memory. The UI's download and the CLI's
`python -m core conversations export` use one `ConversationExport`: it keeps the actor of the
code that made it (a download is built later, on another thread) and, once the last line is
out, writes one audit row with the format and the filter. An export is a read: there is no
write of its own to share a transaction with, so the audit row follows the export in a
transaction of its own, and an export that fails before its end leaves none.

JSONL line (the chat-messages fine-tuning format):
    {"messages": [{"role": "system", "content": ...}, {"role": "user", ...}, {"role": "assistant", ...}, ...]}
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, Kind, current_actor, require, where
from core.auth.audit import AuditAction, audit
from core.csv_cells import safe_cell
from core.errors import ErrorCode, NotFoundError
from core.redact import redact_cut
from core.resilience import run_db
from core.store.paging import Page
from core.store.schema import conversations
from core.store.tx import read_conn, write_tx

__all__ = ["ConversationExport", "ConversationFilter", "ExportFormat", "Page", "delete_conversation", "delete_draft_conversation",
           "get_conversation", "iter_csv", "iter_jsonl", "list_conversations", "missing", "require_conversation",
           "to_messages"]

ExportFormat = Literal["jsonl", "csv"]

_CHUNK = 500
CSV_COLUMNS = ("id", "created_at", "batch_id", "item_index", "draft_id", "template", "model", "persona",
               "emotion", "topic", "turn_count", "input_tokens", "output_tokens", "cost_usd", "messages")


@dataclass(frozen=True)
class ConversationFilter:
    batch_id: str | None = None
    template: str | None = None
    owner_id: str | None = None  # one person's (app_users.id), within what the actor may see
    since: datetime | None = None
    until: datetime | None = None
    draft_only: bool = False  # single generations (from drafts), not batch items

    def where(self) -> list[sa.ColumnElement[bool]]:
        cond: list[sa.ColumnElement[bool]] = []
        if self.batch_id:
            cond.append(conversations.c.batch_id == self.batch_id)
        if self.template:
            cond.append(conversations.c.template == self.template)
        if self.owner_id:
            cond.append(conversations.c.owner_id == self.owner_id)
        if self.since:
            cond.append(conversations.c.created_at >= self.since)
        if self.until:
            cond.append(conversations.c.created_at < self.until)
        if self.draft_only:
            cond.append(conversations.c.batch_id.is_(None))
        return cond

    def describe(self) -> dict[str, Any]:
        """The fields that are set, as plain values (an audit row's "filter")."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value:
                out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def missing(conversation_id: str) -> str:
    """What an id that names no conversation the actor may see gets (one that does not exist gets the same)."""
    return f"There is no conversation {redact_cut(str(conversation_id), 80)!r}."


def _visible(actor: Actor, action: Action = Action.VIEW) -> sa.ColumnElement[bool]:
    return where(actor, action, Kind.CONVERSATION, conversations.c.owner_id)


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
    actor = current_actor(engine)
    where = [*flt.where(), _visible(actor)]
    with read_conn(engine, actor=actor) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(conversations).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(conversations).where(*where)
            .order_by(conversations.c.created_at.desc(), conversations.c.id)
            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([dict(r) for r in rows], int(total), page, page_size)


def get_conversation(engine: Engine, conversation_id: str) -> dict[str, Any] | None:
    """One saved conversation by id, or None when it is not there (any more) or the actor may not see it."""
    actor = current_actor(engine)
    with read_conn(engine, actor=actor) as conn:
        row = conn.execute(sa.select(conversations).where(
            conversations.c.id == conversation_id, _visible(actor))).mappings().first()
    return dict(row) if row is not None else None


def require_conversation(engine: Engine, conversation_id: str) -> dict[str, Any]:
    """One saved conversation by id; NotFoundError if there is none the actor may see."""
    row = get_conversation(engine, conversation_id)
    if row is None:
        raise NotFoundError(missing(conversation_id), user_message=missing(conversation_id), field="conversation")
    return row


def delete_conversation(engine: Engine, conversation_id: str, *, draft_id: str | None = None) -> None:
    """Delete a conversation (its owner or an admin) and write its audit row, in one transaction.

    NotFoundError if there is none the actor may see (or, with `draft_id`, it is not that draft's);
    one the actor sees but may not delete (a reviewer, someone else's) is refused and named so.
    """
    actor = current_actor(engine)
    gone = missing(conversation_id)

    def _delete() -> None:
        c = conversations.c
        with write_tx(engine, actor=actor) as conn:
            row = conn.execute(sa.select(c.owner_id, c.batch_id, c.item_index, c.draft_id, c.template).where(
                c.id == conversation_id, _visible(actor))).mappings().first()
            if row is None or (draft_id is not None and row["draft_id"] != draft_id):
                raise NotFoundError(gone, user_message=gone, field="conversation")
            require(actor, Action.DELETE, Kind.CONVERSATION, row["owner_id"], code=ErrorCode.PERMISSION_DENIED,
                    field="conversation", missing=f"Only the person who made conversation "
                                                  f"{redact_cut(conversation_id, 80)!r}, or an admin, can delete it.")
            conn.execute(conversations.delete().where(c.id == conversation_id, _visible(actor, Action.DELETE)))
            audit(conn, AuditAction.CONVERSATION_DELETE, "conversation", conversation_id,
                  {k: row[k] for k in ("owner_id", "batch_id", "item_index", "draft_id", "template")
                   if row[k] is not None}, actor=actor)

    run_db(_delete)


def delete_draft_conversation(engine: Engine, conversation_id: str, draft_id: str) -> bool:
    """Remove the conversation a single generation saved: only when it is still that draft's; whether it went."""
    try:
        delete_conversation(engine, conversation_id, draft_id=draft_id)
    except NotFoundError:
        return False
    return True


def _iter_rows(engine: Engine, flt: ConversationFilter | None, actor: Actor) -> Iterator[Any]:
    """Matching rows oldest first, read in chunks by keyset (created_at, id) so memory stays flat."""
    flt = flt or ConversationFilter()
    where = [*flt.where(), _visible(actor, Action.EXPORT)]
    last: tuple[datetime, str] | None = None
    order = (conversations.c.created_at, conversations.c.id)
    while True:
        query = sa.select(conversations).where(*where).order_by(*order).limit(_CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(last[0], conversations.c.created_at.type),
                                                              sa.literal(last[1])))
        with read_conn(engine, actor=actor) as conn:
            rows = conn.execute(query).mappings().all()
        yield from rows
        if len(rows) < _CHUNK:
            return
        last = (rows[-1]["created_at"], rows[-1]["id"])


def iter_jsonl(engine: Engine, flt: ConversationFilter | None = None, *, actor: Actor | None = None
               ) -> Iterator[str]:
    """One JSON line (with its newline) per matching conversation the actor may export: {"messages": [...]}.

    The actor is taken now (default: the running code's), not when the first line is read.
    """
    return _jsonl_lines(engine, flt, actor or current_actor(engine))


def _jsonl_lines(engine: Engine, flt: ConversationFilter | None, actor: Actor) -> Iterator[str]:
    for row in _iter_rows(engine, flt, actor):
        yield json.dumps({"messages": to_messages(row)}, ensure_ascii=False) + "\n"


def iter_csv(engine: Engine, flt: ConversationFilter | None = None, *, actor: Actor | None = None) -> Iterator[str]:
    """The header line, then one CSV line per matching conversation the actor may export (messages as a JSON cell).

    The actor is taken now (default: the running code's), not when the first line is read.
    """
    return _csv_lines(engine, flt, actor or current_actor(engine))


def _csv_lines(engine: Engine, flt: ConversationFilter | None, actor: Actor) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)

    def _take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield _take()
    for row in _iter_rows(engine, flt, actor):
        params = row["params"] or {}
        # persona, topic and model text are untrusted: quoted like the error export's cells
        writer.writerow([safe_cell(v) for v in (
            row["id"], row["created_at"], row["batch_id"], row["item_index"], row["draft_id"], row["template"],
            row["model"], params.get("persona", ""), params.get("emotion", ""), params.get("topic", ""),
            row["turn_count"], row["input_tokens"], row["output_tokens"], row["cost_usd"],
            json.dumps(to_messages(row), ensure_ascii=False))])
        yield _take()


class ConversationExport:
    """One export of the filtered conversations, as the actor who asked for it, and its one audit row.

    Made where the person acts (the page run, the CLI command); `lines()` may be read later on
    another thread (a download is built when it is clicked) and still reads as that person.
    `done()` writes the audit row once the lines are out: how many rows, whether all of them.
    """

    def __init__(self, engine: Engine, flt: ConversationFilter | None = None, fmt: ExportFormat = "jsonl", *,
                 via: str = "cli", actor: Actor | None = None) -> None:
        self.engine, self.flt, self.fmt, self.via = engine, flt or ConversationFilter(), fmt, via
        self.actor = actor or current_actor(engine)

    def lines(self) -> Iterator[str]:
        """The export's lines: JSONL, or CSV with its header line first."""
        if self.fmt == "csv":
            return iter_csv(self.engine, self.flt, actor=self.actor)
        return iter_jsonl(self.engine, self.flt, actor=self.actor)

    def rows_in(self, lines: int) -> int:
        """How many conversations `lines` lines of this export hold."""
        return max(0, lines - 1) if self.fmt == "csv" else lines

    def done(self, lines: int, *, complete: bool = True) -> None:
        """Record the export: its format, filter and rows, in one audit row (`complete`: every matching row)."""
        detail = {"format": self.fmt, "filter": self.flt.describe(), "rows": self.rows_in(lines),
                  "complete": complete, "via": self.via}

        def _write() -> None:
            with write_tx(self.engine, actor=self.actor) as conn:
                audit(conn, AuditAction.EXPORT_CONVERSATIONS, "conversations", None, detail, actor=self.actor)

        run_db(_write)
