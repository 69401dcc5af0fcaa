"""Saved conversations: list them a page at a time, read and delete them (core.datasets exports them).

Every query carries the permissions module's condition for the actor (core.auth.permissions):
an analyst reaches their own conversations, a reviewer and an admin every one, and deleting is
the owner's (or an admin's). A conversation the actor may not see answers as one that does not
exist. A delete writes its audit row in its own transaction.

Exports (trainer formats, split, card) are core.datasets'; they read the rows through
`stream_rows`, which reads them in chunks by keyset so a million conversations never sit in
memory, and build the chat messages with `to_messages`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, Kind, current_actor, require, where
from core.auth.audit import AuditAction, audit
from core.errors import ErrorCode, NotFoundError
from core.redact import redact_cut
from core.resilience import run_db
from core.store.paging import Page
from core.store.schema import conversations
from core.store.tx import read_conn, write_tx

__all__ = ["ConversationFilter", "Page", "delete_conversation", "delete_draft_conversation", "get_conversation",
           "list_conversations", "missing", "require_conversation", "stream_rows", "to_messages", "visible"]

_CHUNK = 500


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


def visible(actor: Actor, action: Action = Action.VIEW) -> sa.ColumnElement[bool]:
    """The condition for the conversations `actor` may `action` (the permissions module's)."""
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
    where = [*flt.where(), visible(actor)]
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
            conversations.c.id == conversation_id, visible(actor))).mappings().first()
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
                c.id == conversation_id, visible(actor))).mappings().first()
            if row is None or (draft_id is not None and row["draft_id"] != draft_id):
                raise NotFoundError(gone, user_message=gone, field="conversation")
            require(actor, Action.DELETE, Kind.CONVERSATION, row["owner_id"], code=ErrorCode.PERMISSION_DENIED,
                    field="conversation", missing=f"Only the person who made conversation "
                                                  f"{redact_cut(conversation_id, 80)!r}, or an admin, can delete it.")
            conn.execute(conversations.delete().where(c.id == conversation_id, visible(actor, Action.DELETE)))
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


def stream_rows(engine: Engine, flt: ConversationFilter | None, actor: Actor, *,
                action: Action = Action.EXPORT, extra: Sequence[sa.ColumnElement[bool]] = (),
                columns: Sequence[sa.ColumnElement[Any]] | None = None) -> Iterator[Any]:
    """Matching rows the actor may `action`, oldest first, read in chunks by keyset (created_at, id) so memory stays flat.

    `extra` narrows the filter further; `columns` reads only those (created_at and id are added: the keyset's).
    """
    flt = flt or ConversationFilter()
    cond = [*flt.where(), *extra, visible(actor, action)]
    order = (conversations.c.created_at, conversations.c.id)
    picked: list[Any] = [conversations] if columns is None else [
        *columns, *(c for c in order if all(c is not k for k in columns))]
    last: tuple[datetime, str] | None = None
    while True:
        query = sa.select(*picked).where(*cond).order_by(*order).limit(_CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(last[0], conversations.c.created_at.type),
                                                              sa.literal(last[1])))
        with read_conn(engine, actor=actor) as conn:
            rows = conn.execute(query).mappings().all()
        yield from rows
        if len(rows) < _CHUNK:
            return
        last = (rows[-1]["created_at"], rows[-1]["id"])
