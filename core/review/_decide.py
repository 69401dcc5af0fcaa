"""A reviewer's decisions by hand: accept or reject conversations, edit a turn's text, each with a note.

Each call is one transaction: the conversations' review state (status, reviewer, time, note),
one `review_decisions` row per conversation, and one audit row. An id the actor may not review
answers "not found" and changes nothing, the other ids included.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth import Actor, current_actor
from core.auth.audit import AuditAction, audit
from core.config import get_settings
from core.conversations import missing
from core.errors import ErrorCode, NotFoundError, ValidationError
from core.quality import assess, gate_values
from core.redact import redact_text
from core.resilience import run_db
from core.review._queue import reviewable
from core.store.schema import conversations, review_decisions, utcnow
from core.store.tx import write_tx

__all__ = ["DECISIONS", "Decision", "checked_decision", "checked_note", "decide", "edit_turn", "record_decisions"]

Decision = Literal["accepted", "rejected"]
DECISIONS: tuple[str, ...] = ("accepted", "rejected")
_c = conversations.c
_CHUNK_IDS = 500  # ids per statement: well inside every engine's bound-parameter limit
_AUDITED_IDS = 20  # an audit row names this many of the ids it decided, and counts them all


def checked_note(note: str | None) -> str | None:
    """The note as it is kept (None when blank); ValidationError when it is longer than a stored reason may be."""
    if note is None or not note.strip():
        return None
    limit = get_settings().stored_reason_max_chars
    if len(note) > limit:
        message = f"The note is {len(note):,} characters long; at most {limit:,} are kept."
        raise ValidationError(message, code=ErrorCode.TOO_LONG, field="note", user_message=message)
    return note.strip()


def checked_decision(decision: str) -> Decision:
    if decision not in DECISIONS:
        message = f"A decision is one of: {', '.join(DECISIONS)}."
        raise ValidationError(message, code=ErrorCode.INVALID_INPUT, field="decision", user_message=message)
    return decision  # type: ignore[return-value]


def _not_found(ids: Sequence[str]) -> NotFoundError:
    message = missing(ids[0]) if len(ids) == 1 else f"{missing(ids[0])[:-1]} (and {len(ids) - 1:,} more)."
    return NotFoundError(message, user_message=message, field="conversation")


def decide(engine: Engine, conversation_ids: Sequence[str], decision: str, note: str | None = None) -> int:
    """Accept or reject conversations by id, as the running actor, in one transaction; how many were decided.

    Any conversation the actor may review may be decided, whatever its state (a rejected one
    accepted after all). NotFoundError, changing nothing, when an id names none they may review.
    """
    ids = list(dict.fromkeys(str(i).strip() for i in conversation_ids if str(i).strip()))
    if not ids:
        raise ValidationError("Give the ids of the conversations to decide.", code=ErrorCode.MISSING_VALUE,
                              field="ids", user_message="Give the ids of the conversations to decide.")
    status, note = checked_decision(decision), checked_note(note)
    actor = current_actor(engine)

    def _decide() -> int:
        now = utcnow()
        with write_tx(engine, actor=actor) as conn:
            chunks = [ids[i:i + _CHUNK_IDS] for i in range(0, len(ids), _CHUNK_IDS)]
            found: list[str] = []
            for chunk in chunks:  # locked first: a bulk operation deciding them too waits, then finds them decided
                found += conn.execute(sa.select(_c.id).where(_c.id.in_(chunk), reviewable(actor))
                                      .with_for_update()).scalars().all()
            absent = [i for i in ids if i not in set(found)]
            if absent:
                raise _not_found(absent)
            for chunk in chunks:
                conn.execute(conversations.update().where(_c.id.in_(chunk), reviewable(actor)).values(
                    review_status=status, reviewed_by=actor.user_id, reviewed_at=now, review_note=note))
            record_decisions(conn, ids, status, note, actor, now)
            detail: dict[str, Any] = {"decision": status, "count": len(ids), "conversation_ids": ids[:_AUDITED_IDS]}
            if len(ids) > _AUDITED_IDS:
                detail["more_ids"] = len(ids) - _AUDITED_IDS
            if note:
                detail["note"] = note
            audit(conn, AuditAction.REVIEW_DECISION, "conversation", ids[0] if len(ids) == 1 else None, detail,
                  actor=actor)
        return len(ids)

    return run_db(_decide)


def record_decisions(conn: Connection, ids: Sequence[str], decision: str, note: str | None, actor: Actor,
                     at: Any, operation_id: str | None = None) -> None:
    """One review_decisions row per conversation, on the decision's own transaction."""
    if ids:
        conn.execute(review_decisions.insert(), [
            {"conversation_id": i, "decision": decision, "note": note, "reviewer_id": actor.user_id,
             "operation_id": operation_id, "decided_at": at} for i in ids])


# what an edit takes again from the edited turns (core.quality): not the review state, not the duplicate flag
_RESCORED = ("quality_score", "checks", "score_parts", "content_hash", "minhash")


def edit_turn(engine: Engine, conversation_id: str, turn_index: int, text: str, note: str | None = None) -> None:
    """Replace the text of one turn (from 0), keeping the turns as generated in `original_turns` the first time.

    The review state stays as it was (an edit is not a decision); the reviewer, the time and the note
    are kept, with a review_decisions row "edited" and an audit row, in one transaction. The text is
    redacted before it is stored, like every stored string. The checks, the score and the
    fingerprints are taken again on the edited turns (the duplicate flag keeps what the generated
    text duplicated).
    """
    limit = get_settings().review_turn_max_chars
    if not text.strip():
        raise ValidationError("A turn cannot be empty.", code=ErrorCode.EMPTY_VALUE, field="text",
                              user_message="A turn cannot be empty.")
    if len(text) > limit:
        message = f"The turn is {len(text):,} characters long; at most {limit:,} are allowed."
        raise ValidationError(message, code=ErrorCode.TOO_LONG, field="text", user_message=message)
    note = checked_note(note)
    clean = redact_text(text)
    actor = current_actor(engine)

    def _edit() -> None:
        now = utcnow()
        with write_tx(engine, actor=actor) as conn:
            row = conn.execute(sa.select(_c.turns, _c.original_turns, _c.params).where(
                _c.id == conversation_id, reviewable(actor)).with_for_update()).first()
            if row is None:
                raise _not_found([conversation_id])
            turns = copy.deepcopy(list(row.turns or []))
            if not 0 <= turn_index < len(turns):
                message = f"The conversation has {len(turns)} turns; there is no turn {turn_index + 1}."
                raise ValidationError(message, code=ErrorCode.OUT_OF_RANGE, field="turn", user_message=message)
            before = turns[turn_index]["content"]
            turns[turn_index] = {**turns[turn_index], "content": clean}
            values: dict[str, Any] = {"turns": turns, "reviewed_by": actor.user_id, "reviewed_at": now}
            rescored = gate_values(assess(turns, row.params or {}), None, "")
            values.update({k: rescored[k] for k in _RESCORED})
            if note:
                values["review_note"] = note
            if row.original_turns is None:
                values["original_turns"] = row.turns  # the turns as generated: only the first edit keeps them
            conn.execute(conversations.update().where(_c.id == conversation_id, reviewable(actor)).values(**values))
            record_decisions(conn, [conversation_id], "edited", note, actor, now)
            audit(conn, AuditAction.REVIEW_DECISION, "conversation", conversation_id,
                  {"decision": "edited", "turn": turn_index, "chars_before": len(before), "chars_after": len(clean),
                   **({"note": note} if note else {})}, actor=actor)

    run_db(_edit)
