"""Conversations as the quality gate leaves them (review state, checks, score, duplicate), written directly."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from core import review
from core.auth import Actor, acting_as, system_actor
from core.config import override_settings
from core.store.schema import batch_jobs, conversations, review_decisions, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["batch", "checked", "decisions", "interrupt_a_bulk_accept", "reviewed", "stored"]

_T0 = datetime(2026, 11, 1, 12, 0, tzinfo=utcnow().tzinfo)


def checked(*failed: str) -> list[dict[str, Any]]:
    """A checks list where the names in `failed` failed and two others passed."""
    return [{"name": n, "passed": False, "hard": False, "detail": f"{n} failed"} for n in failed] + [
        {"name": "roles_alternate", "passed": True, "hard": True, "detail": ""},
        {"name": "turn_count", "passed": True, "hard": True, "detail": ""}]


def batch(engine: Engine, owner_id: str | None, name: str = "b") -> str:
    """A finished batch owned by `owner_id`; its id."""
    bid = str(uuid.uuid4())
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(batch_jobs.insert().values(id=bid, name=name, template="tutoring", model="m", config={},
                                                status="completed", total_items=0, owner_id=owner_id))
    return bid


def stored(engine: Engine, owner_id: str | None, n: int = 1, *, status: str = "needs_review",
           batch_id: str | None = None, template: str = "tutoring", score: int | None = 60,
           failed: tuple[str, ...] = (), duplicate_of: str | None = None, start: int = 0,
           turns: list[dict[str, str]] | None = None, judge: dict[str, Any] | None = None) -> list[str]:
    """`n` conversations, one minute apart from minute `start` (oldest first), in `status`; their ids."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    rows = [dict(
        id=cid, batch_id=batch_id, item_index=(start + i) if batch_id else None, template=template, model="m",
        params={"persona": "a nurse", "emotion": "calm", "topic": "night shifts"}, system_prompt="Be kind.",
        turns=turns or [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": "Hello"}],
        turn_count=len(turns or [1, 2]), input_tokens=1, output_tokens=1, cost_usd=0.0, status="ok",
        owner_id=owner_id, created_at=_T0 + timedelta(minutes=start + i), error_count=0, is_recovering=False,
        recovery_attempts=0, review_status=status, quality_score=score, checks=checked(*failed),
        score_parts={"checks": score or 0}, duplicate_of=duplicate_of,
        duplicate_kind="near" if duplicate_of else None, duplicate_similarity=0.9 if duplicate_of else None,
        duplicate_passage="the shared passage" if duplicate_of else None, judge=judge,
        judge_status="ok" if judge else None) for i, cid in enumerate(ids)]
    with acting_as(system_actor()), write_tx(engine) as conn:
        for i in range(0, len(rows), 500):
            conn.execute(conversations.insert(), rows[i:i + 500])
    return ids


def reviewed(engine: Engine, cid: str) -> dict[str, Any]:
    """A conversation's row as stored (read as the system)."""
    with acting_as(system_actor()), read_conn(engine) as conn:
        return dict(conn.execute(sa.select(conversations).where(conversations.c.id == cid)).mappings().one())


def decisions(engine: Engine, cid: str | None = None) -> list[dict[str, Any]]:
    """The review_decisions rows (of one conversation, or all), oldest first."""
    with acting_as(system_actor()), read_conn(engine) as conn:
        q = sa.select(review_decisions).order_by(review_decisions.c.id)
        if cid:
            q = q.where(review_decisions.c.conversation_id == cid)
        return [dict(r) for r in conn.execute(q).mappings()]


def interrupt_a_bulk_accept(engine: Engine, monkeypatch: pytest.MonkeyPatch, reviewer: Actor, flt: review.ReviewFilter,
                            after_chunks: int = 1) -> None:
    """A bulk accept (chunks of 3) whose chunk after `after_chunks` fails: it stops there, unfinished."""
    override_settings(review_bulk_chunk_rows=3)
    real_advance, calls = review._bulk.advance, 0

    def advance_then_fail(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > after_chunks:
            raise RuntimeError("the process dies mid-way")
        return real_advance(*args, **kwargs)

    monkeypatch.setattr("core.review._bulk.advance", advance_then_fail)
    with acting_as(reviewer), pytest.raises(Exception, match="dies mid-way"):
        review.bulk_decide(engine, flt, "accepted", note="first note")
    monkeypatch.setattr("core.review._bulk.advance", real_advance)
