"""Conversations as the quality gate leaves them (review status, score, hash, duplicate link), inserted directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from core.auth import acting_as, system_actor
from core.store.schema import conversations, review_decisions, utcnow
from core.store.tx import write_tx

__all__ = ["decide", "insert", "row"]

_BASE = utcnow() - timedelta(hours=2)


def row(i: int, *, status: str = "accepted", score: int | None = 80, persona: str | None = None,
        emotion: str = "calm", topic: str = "fees", template: str = "tutoring", version: int | None = 1,
        model: str = "claude-sonnet-5-5", content_hash: str | None = None, duplicate_of: str | None = None,
        system_prompt: str | None = "Be kind.", answer: str | None = None, owner_id: str | None = None,
        cid: str | None = None, batch_id: str | None = None) -> dict[str, Any]:
    """Conversation number `i` (its created_at orders it), its quality columns filled as the gate would."""
    params: dict[str, Any] = {"persona": persona if persona is not None else f"persona {i % 3}",
                              "emotion": emotion, "topic": topic}
    if version is not None:
        params["template_version"] = version
    return {
        "id": cid or str(uuid.uuid4()), "batch_id": batch_id, "item_index": i if batch_id else None,
        "template": template, "model": model, "params": params,
        "system_prompt": system_prompt,
        "turns": [{"role": "user", "content": f"question {i}?"},
                  {"role": "assistant", "content": answer if answer is not None else f"answer {i}, \"quoted\"\nline"}],
        "turn_count": 2, "input_tokens": 100 + i, "output_tokens": 50 + i, "cost_usd": 0.001 * (i + 1),
        "status": "ok", "created_at": _BASE + timedelta(seconds=i), "error_count": 0, "is_recovering": False,
        "recovery_attempts": 0, "owner_id": owner_id, "review_status": status, "quality_score": score,
        "content_hash": content_hash or uuid.uuid4().hex, "duplicate_of": duplicate_of,
        "duplicate_kind": "near" if duplicate_of else None, "cache_read_tokens": 10, "cache_creation_tokens": 5,
        "judge_cost_usd": 0.0005}


def insert(engine: Engine, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(rows)
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(conversations.insert(), rows)
    return rows


def decide(engine: Engine, decisions: Iterable[tuple[str, str, str | None]]) -> None:
    """Review decisions (conversation id, decision, reviewer id) as core.review records them."""
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(review_decisions.insert(), [
            {"conversation_id": cid, "decision": decision, "reviewer_id": reviewer, "decided_at": utcnow()}
            for cid, decision, reviewer in decisions])
