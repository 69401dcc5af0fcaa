"""The optional LLM judge: a rubric scored 1-5 with a short reason before each score, as JSON.

Off by default: nothing calls it unless asked (`judge_conversation`). It goes through the one
model client (retries, breaker, limiter, error log), as component "judge", and its cost is
kept apart from generation (conversations.judge_cost_usd, batch_jobs.judge_cost_usd). A reply
that is not the JSON asked for is recorded (GenerationError, MALFORMED_JSON) and asked again
up to settings.quality_judge_invalid_retries times; then, or when the call itself fails, the
judgement is "failed" with the reason, and nothing raises.

The request carries a `Judge rubric:` line naming the criteria, which the sandbox recognises
and answers with valid JSON (its invalid-conversation fault answers with a cut one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Kind, current_actor, where
from core.auth.actor import system_actor
from core.config import get_settings
from core.errorlog import record
from core.errors import AppError, ErrorCode, GenerationError, NotFoundError
from core.redact import redact_cut
from core.resilience import run_db
from core.store.schema import batch_jobs, conversations
from core.store.tx import read_conn, write_tx

__all__ = ["JUDGE_SYSTEM", "RUBRIC", "Judgement", "ajudge", "judge_conversation", "judge_prompt", "parse_judgement"]

RUBRIC = ("persona_consistency", "emotion_fidelity", "topic_adherence", "user_realism", "assistant_quality",
          "coherence", "safety")

JUDGE_SYSTEM = (
    "You grade one synthetic training conversation between a user and an assistant. For each criterion of the "
    "rubric, write a short reason first, then a whole score from 1 (poor) to 5 (excellent). Answer with one JSON "
    "object and nothing else: each criterion a key, its value {\"reason\": \"...\", \"score\": n}.")


@dataclass(frozen=True)
class Judgement:
    """The judge's answer: "ok" with a score and reason per criterion, or "failed" with why; its cost either way."""

    status: str  # ok|failed
    scores: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    cost_usd: float = 0.0
    calls: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"scores": self.scores, "reasons": self.reasons, "error": self.error, "calls": self.calls}


def judge_prompt(turns: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """The user message: the brief, the rubric line and the transcript."""
    brief = "\n".join(f"{key.capitalize()} asked for: {params.get(key) or '-'}"
                      for key in ("persona", "emotion", "topic"))
    transcript = "\n\n".join(f"[{t.get('role')}] {t.get('content') or ''}" for t in turns)
    return f"Judge rubric: {', '.join(RUBRIC)}\n{brief}\n\nThe conversation:\n\n{transcript}"


def parse_judgement(text: str) -> tuple[dict[str, int], dict[str, str]]:
    """(scores, reasons) from the judge's reply; ValueError saying what is wrong with it."""
    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    scores: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for key in RUBRIC:
        entry = data.get(key)
        if not isinstance(entry, dict):
            raise ValueError(f"{key} is missing")
        score, reason = entry.get("score"), entry.get("reason")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ValueError(f"{key} has no whole score from 1 to 5")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{key} has no reason")
        scores[key], reasons[key] = score, reason.strip()
    return scores, reasons


async def ajudge(turns: Sequence[Mapping[str, Any]], params: Mapping[str, Any], *, client: Any = None,
                 model: str | None = None, operation_id: str | None = None) -> Judgement:
    """Judge one conversation; never raises for the model's failures (a "failed" Judgement says why)."""
    from core.llm.client import get_client  # imports the SDK: only when judging

    s = get_settings()
    client = client or get_client()
    limit = s.stored_reason_max_chars
    cost, calls, problem = 0.0, 0, ""
    for _ in range(1 + s.quality_judge_invalid_retries):
        try:
            llm = await client.acomplete(system=JUDGE_SYSTEM, messages=[{"role": "user",
                                                                         "content": judge_prompt(turns, params)}],
                                         model=model, max_tokens=s.quality_judge_max_tokens, component="judge",
                                         operation_id=operation_id)
        except AppError as err:  # classified and recorded by the client
            return Judgement("failed", cost_usd=cost, calls=calls,
                             error=redact_cut(f"The judge could not be reached: {err.user_message}", limit))
        cost, calls = cost + llm.cost_usd, calls + 1
        try:
            scores, reasons = parse_judgement(llm.text)
        except ValueError as exc:
            problem = str(exc)
            unusable = GenerationError(f"The judge's answer is unusable: {problem}.", code=ErrorCode.MALFORMED_JSON,
                                       user_message="The judge's answer was not the JSON asked for; it is asked "
                                                    "again.")
            record(unusable, component="judge", attempt=calls, request_id=llm.request_id, operation_id=operation_id)
            continue
        return Judgement("ok", scores, {k: redact_cut(v, limit) for k, v in reasons.items()}, cost, calls)
    return Judgement("failed", cost_usd=cost, calls=calls,
                     error=redact_cut(f"The judge's answer was not the JSON asked for {calls} times ({problem}).",
                                      limit))


def judge_conversation(engine: Engine, conversation_id: str, *, client: Any = None) -> Judgement:
    """Judge a stored conversation the actor may see and store the judgement; its cost is added as judge cost.

    NotFoundError if there is no such conversation the actor may see. The judgement and its cost
    (on the conversation and on its batch) are written in one transaction.
    """
    from core.llm.loops import run_sync

    actor = current_actor(engine)
    c = conversations.c
    with read_conn(engine, actor=actor) as conn:
        row = conn.execute(sa.select(c.id, c.batch_id, c.turns, c.params, c.model).where(
            c.id == conversation_id, where(actor, Action.VIEW, Kind.CONVERSATION, c.owner_id))).first()
    if row is None:
        raise NotFoundError(f"There is no conversation with id {conversation_id!r} the actor may see.",
                            code=ErrorCode.NOT_FOUND, field="conversation",
                            user_message="This conversation no longer exists.")
    judgement = run_sync(ajudge(row.turns or [], row.params or {}, client=client, operation_id=row.batch_id))

    def _write() -> None:
        # as the system, as a worker writes a batch's results: the actor was checked above
        with write_tx(engine, actor=system_actor()) as conn:
            if row.batch_id is not None:  # the batch row first: the one lock order
                conn.execute(batch_jobs.update().where(batch_jobs.c.id == row.batch_id).values(
                    judge_cost_usd=batch_jobs.c.judge_cost_usd + judgement.cost_usd))
            conn.execute(conversations.update().where(c.id == row.id).values(
                judge=judgement.to_json(), judge_status=judgement.status,
                judge_cost_usd=c.judge_cost_usd + judgement.cost_usd))

    run_db(_write)
    return judgement
