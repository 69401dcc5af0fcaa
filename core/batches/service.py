"""Batch service: create, inspect, estimate, pause, cancel and resume batches. Pages and the CLI call this.

A batch is one `batch_jobs` row and one `batch_items` row per conversation to generate,
written in one transaction. The items are the batch's checkpoint: every count, the progress
and the ETA are computed from them when asked (see core.batches.checkpoints, "Batch
guarantees"). Workers (core.batches.worker) do the generating; this module never calls the model.

Control actions and items in flight (an item is "running" while a worker holds its claim):
- Pause stops new claims; items in flight finish and are kept.
- Resume puts back to pending only the running items whose claim has expired (their worker
  is gone); an item a live worker is still generating stays its, so it is not generated twice.
- Cancel ends the batch at once: pending and running items become skipped. A worker still
  generating one of them may yet deliver its reply; it is accepted (the item becomes done),
  so a paid-for conversation is kept and an item whose worker died does not stay running.

Message Batches mode (core.batches.message_batches): an item in a remote batch is "running"
with its submission_id until its result is collected; Pause stops new submissions (the remote
batches in flight are still collected), Cancel also makes the worker cancel the remote batches,
and Resume continues from the stored submissions.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import Actor, current_actor, system_actor
from core.auth.audit import AuditAction, audit
from core.auth.permissions import Action, Kind, may, require, where
from core.auth.users import names_of
from core.batches.leases import claim_expired
from core.batches.states import (
    BATCH_MODES,
    BATCH_STATES,
    TERMINAL,
    check_transition,
    is_interrupted,
    shown_state,
)
from core.config import get_settings
from core.errors import ErrorCode, NotFoundError, ValidationError
from core.generation import GenerationParams, build_prompt, get_template, validate_params
from core.generation.service import estimate_output_tokens
from core.llm.pricing import cost_usd, price
from core.redact import redact_text
from core.resilience import run_db
from core.store.paging import Page
from core.store.schema import (
    audit_events,
    batch_items,
    batch_jobs,
    batch_resumes,
    conversations,
    message_batch_submissions,
    utcnow,
)
from core.store.tx import read_conn, write_tx
from core.templates.coverage import COVERAGE_MODES, plan
from core.templates.store import resolve

__all__ = [
    "batch_history",
    "batch_names",
    "batches_page",
    "cancel_batch",
    "create_batch",
    "default_name",
    "estimate",
    "failed_items",
    "get_batch_status",
    "list_batches",
    "pause_batch",
    "resolve_batch_id",
    "resume_batch",
    "resume_history_page",
    "set_budget",
    "validated_budget",
]

_INSERT_CHUNK = 2_000


def _refuse(message: str, code: ErrorCode, field: str) -> ValidationError:
    return ValidationError(message, code=code, field=field, user_message=message)


def _no_batch(batch_id: str) -> NotFoundError:
    """What a batch that does not exist, or that the actor may not see, answers: the same words."""
    message = f"There is no batch with id {batch_id!r}."
    return NotFoundError(message, code=ErrorCode.UNKNOWN_BATCH, field="batch_id", user_message=message)


def _visible(actor: Actor, action: Action = Action.VIEW) -> sa.ColumnElement[bool]:
    """The batches `actor` may do `action` on (every query on batch_jobs carries it)."""
    return where(actor, action, Kind.BATCH, batch_jobs.c.owner_id)


def _validate_count(count: Any) -> int:
    limit = get_settings().batch_max_items
    if isinstance(count, bool) or not isinstance(count, int):
        raise _refuse(f"The count must be a whole number from 1 to {limit:,}; got {count!r}.", ErrorCode.INVALID_COUNT,
                      "count")
    if count < 1 or count > limit:
        raise _refuse(f"The count must be from 1 to {limit:,}; got {count:,}.", ErrorCode.INVALID_COUNT, "count")
    return count


def _grid_value(choices: Sequence[str] | None, default: Sequence[str], name: str) -> list[str]:
    values = [v.strip() for v in (choices or default) if v and v.strip()]
    if not values:
        raise _refuse(f"Choose at least one {name}.", ErrorCode.EMPTY_CHOICE, name)
    return values


def _item_params(template: str, model: str, turns: int, persona: str, emotion: str, topic: str,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    return {"template": template, "persona": persona, "emotion": emotion, "topic": topic, "turns": turns,
            "model": model, **overrides}


def _validated(params: dict[str, Any], where: str) -> None:
    try:
        validate_params(GenerationParams(**params))
    except ValidationError as exc:
        message = f"{where}: {exc.user_message}" if where else exc.user_message
        raise ValidationError(message, code=exc.code, field=exc.field, user_message=message) from exc


def _with(params: dict[str, Any], custom: dict[str, str], edge_case: str | None) -> dict[str, Any]:
    """An item's params with its custom variables and edge case, where it has them."""
    return {**params, **({"variables": custom} if custom else {}), **({"edge_case": edge_case} if edge_case else {})}


def create_batch(
    engine: Engine,
    *,
    template: str,
    count: int | None = None,
    personas: Sequence[str] | None = None,
    emotions: Sequence[str] | None = None,
    topics: Sequence[str] | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
    turns: int | None = None,
    model: str | None = None,
    concurrency: int | None = None,
    name: str | None = None,
    system_prompt: str | None = None,
    user_template: str | None = None,
    variables: Mapping[str, Sequence[str]] | None = None,
    edge_cases: Sequence[str] | None = None,
    coverage: str = "cycle",
    template_version: int | None = None,
    mode: str = "online",
    budget_usd: float | None = None,
    judge: bool = False,
) -> str:
    """Create a queued batch in one transaction and return its id.

    The batch and every item name the template version they are generated from (`template_version`:
    the latest when None), so an edit of the template made later changes none of them. With `rows`
    (parsed CSV, see core.batches.csv_import; a row may give any of the template's custom variables)
    each row is one item (`count` cuts them); otherwise the items draw from personas x emotions x topics
    x each custom variable (`variables`; each defaulting to the template's suggestions) x `edge_cases`
    (names; None: all of the template's), cycling or balanced (`coverage`, see core.templates.coverage)
    up to `count`. `system_prompt` / `user_template` replace the template's texts for every item (an
    edited template). Refuses bad input with a ValidationError before anything is written. `turns`
    defaults to settings.generation_default_turns (within the template's range); a CSV row may give its own.
    `mode`: how the items reach the model, "online" (one call each) or "message_batches" (remote
    Message Batches at the batch discount, see core.batches.message_batches); `budget_usd`: a spend
    cap, None for none (see core.batches.budget); `judge`: the optional LLM judge scores every
    conversation of the batch, whatever its template says (core.quality.judge).
    The batch is the acting person's (owner_id), and its creation is audited in the same transaction.
    """
    actor = current_actor(engine)
    require(actor, Action.CREATE, Kind.BATCH, actor.owner_id, missing="Sign in to create a batch.")
    overrides: dict[str, Any] = {k: v for k, v in (("system_prompt", system_prompt),
                                                   ("user_template", user_template)) if v is not None}

    settings = get_settings()
    tmpl = resolve(template, template_version, engine=engine)  # ValidationError for an unknown template
    if tmpl.archived:
        raise _refuse(f"The template {template!r} is archived; choose another one.", ErrorCode.TEMPLATE_ARCHIVED,
                      "template")
    if coverage not in COVERAGE_MODES:
        raise _refuse(f"Coverage must be one of: {', '.join(COVERAGE_MODES)}; got {str(coverage)[:40]!r}.",
                      ErrorCode.INVALID_INPUT, "coverage")
    mode = _validated_mode(mode)
    budget_usd = validated_budget(budget_usd)
    overrides["template_version"] = tmpl.version
    model = model or tmpl.content.model or settings.default_model
    turns = tmpl.turns_near(settings.generation_default_turns) if turns is None else turns
    custom_names = tmpl.content.custom_variables
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or not 1 <= concurrency <= settings.max_concurrency):
        raise _refuse(f"Concurrency must be a whole number from 1 to {settings.max_concurrency}; "
                      f"got {str(concurrency)[:24]}.", ErrorCode.INVALID_CONCURRENCY, "concurrency")
    if name is not None:
        name = redact_text(name)  # a person's label is stored and shown: a pasted key never is
    if name is not None and len(name) > settings.batch_name_max_chars:
        raise _refuse(f"The name is {len(name):,} characters long; the limit is {settings.batch_name_max_chars:,}.",
                      ErrorCode.TOO_LONG, "name")
    params: list[dict[str, Any]]
    if rows is not None:
        if not rows:
            raise _refuse("The uploaded file has no rows.", ErrorCode.EMPTY_UPLOAD, "csv")
        n = _validate_count(len(rows) if count is None else count)
        if n > len(rows):
            raise _refuse(f"The count ({n:,}) is larger than the {len(rows):,} rows uploaded.", ErrorCode.INVALID_COUNT,
                          "count")
        params = []
        for i, row in enumerate(rows[:n]):
            p = _item_params(template, model, int(row["turns"]) if row.get("turns") is not None else turns, str(row.get("persona", "")),
                             str(row.get("emotion", "")), str(row.get("topic", "")), overrides)
            p = _with(p, {k: str(row[k]) for k in custom_names if row.get(k) not in (None, "")}, None)
            _validated(p, f"Row {i + 1}")
            params.append(p)
        source: dict[str, Any] = {"source": "csv", "rows": len(rows)}
    else:
        n = _validate_count(count)
        unknown = sorted(set(variables or {}) - set(custom_names))
        if unknown:
            raise _refuse(f"{unknown[0][:40]!r} is not a variable of the template {template!r}.",
                          ErrorCode.UNKNOWN_PLACEHOLDER, "variables")
        grid = {"persona": _grid_value(personas, tmpl.personas, "persona"),
                "emotion": _grid_value(emotions, tmpl.emotions, "emotion"),
                "topic": _grid_value(topics, tmpl.topics, "topic"),
                **{k: _grid_value((variables or {}).get(k), tmpl.content.values(k), k) for k in custom_names}}
        chosen = list(tmpl.content.edge_cases) if edge_cases is None else [
            tmpl.content.edge_case(e) or _no_edge_case(template, e) for e in edge_cases]
        first = {k: vs[0] for k, vs in grid.items()}
        checks = [{**first, k: v} for k, vs in grid.items() for v in vs]
        for values, edge in [*((c, None) for c in checks), *((first, e.name) for e in chosen)]:
            _validated(_with(_item_params(template, model, turns, values["persona"], values["emotion"], values["topic"],
                                          overrides), {k: values[k] for k in custom_names}, edge), "")
        params = [_with(_item_params(template, model, turns, values[0], values[1], values[2], overrides),
                        dict(zip(custom_names, values[3:], strict=True)), edge)
                  for values, edge in plan(list(grid.values()), [(e.name, e.weight) for e in chosen], n,
                                           coverage)]  # type: ignore[arg-type]
        source = {"source": "grid", "personas": grid["persona"], "emotions": grid["emotion"],
                  "topics": grid["topic"], "coverage": coverage,
                  **({"variables": {k: grid[k] for k in custom_names}} if custom_names else {}),
                  **({"edge_cases": [e.name for e in chosen]} if chosen else {})}
    batch_id = str(uuid.uuid4())
    conc = concurrency or settings.worker_concurrency
    config = {"template": template, "model": model, "turns": turns, "concurrency": conc, "mode": mode, **source,
              **overrides, **({"judge": True} if judge else {})}
    now = utcnow()

    def _write() -> None:
        with write_tx(engine) as conn:
            conn.execute(batch_jobs.insert().values(
                id=batch_id, name=name or default_name(tmpl.title, n, now), template=template, model=model, config=config,
                status="queued", total_items=n, concurrency=conc, created_by=actor.label, owner_id=actor.owner_id,
                created_at=now, updated_at=now, input_tokens=0, output_tokens=0, cost_usd=0.0, mode=mode,
                budget_usd=budget_usd))
            for start in range(0, n, _INSERT_CHUNK):
                conn.execute(batch_items.insert(), [
                    {"batch_id": batch_id, "item_index": start + j, "params": p, "status": "pending",
                     "attempts": 0, "updated_at": now, "owner_id": actor.owner_id}
                    for j, p in enumerate(params[start:start + _INSERT_CHUNK])])
            audit(conn, AuditAction.BATCH_CREATE, Kind.BATCH, batch_id,
                  {"template": template, "model": model, "items": n, "source": source["source"], "mode": mode,
                   "budget_usd": budget_usd}, actor=actor)

    run_db(_write)
    return batch_id


def _validated_mode(mode: Any) -> str:
    if mode not in BATCH_MODES:
        raise _refuse(f"The mode must be one of: {', '.join(BATCH_MODES)}; got {str(mode)[:40]!r}.",
                      ErrorCode.INVALID_MODE, "mode")
    return str(mode)


def validated_budget(budget_usd: Any) -> float | None:
    """A spend cap in dollars: None (no cap) or a finite number above 0 up to settings.batch_budget_max_usd."""
    if budget_usd is None:
        return None
    most = get_settings().batch_budget_max_usd
    if isinstance(budget_usd, bool) or not isinstance(budget_usd, int | float) or not math.isfinite(budget_usd) \
            or not 0 < budget_usd <= most:
        raise _refuse(f"The budget must be a number of dollars above 0 and at most {most:,.0f}; "
                      f"got {str(budget_usd)[:24]}.", ErrorCode.INVALID_BUDGET, "budget_usd")
    return float(budget_usd)


def _no_edge_case(template: str, name: str) -> Any:
    raise _refuse(f"The template {template!r} has no edge case {name[:60]!r}.", ErrorCode.INVALID_INPUT, "edge_cases")


def default_name(template_title: str, count: int, when: datetime) -> str:
    """The name a batch gets when none is given: template, count and creation time, e.g. 'Support x 20 · Mar 04 13:05'."""
    return f"{template_title} x {count:,} · {when:%b %d %H:%M} UTC"


# ---- reading -------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _batch_row(conn: Connection, batch_id: str, actor: Actor) -> Any:
    """The batch `actor` may see; not found (the same words) if it does not exist or is not theirs to see."""
    row = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == batch_id, _visible(actor))).mappings().first()
    if row is None:
        raise _no_batch(batch_id)
    return row


def _counts(conn: Connection, batch_ids: Sequence[str]) -> dict[str, tuple[dict[str, int], datetime | None]]:
    """Each batch's item counts by status, and when an item of it last changed: one grouped read for them all."""
    out: dict[str, tuple[dict[str, int], datetime | None]] = {
        b: (dict.fromkeys(("done", "failed", "pending", "running", "skipped"), 0), None) for b in batch_ids}
    if not out:
        return out
    for batch_id, status, n, changed in conn.execute(
        sa.select(batch_items.c.batch_id, batch_items.c.status, sa.func.count(), sa.func.max(batch_items.c.updated_at))
        .where(batch_items.c.batch_id.in_(list(out))).group_by(batch_items.c.batch_id, batch_items.c.status)
    ):
        counts, last = out[batch_id]
        counts[status] = int(n)
        out[batch_id] = (counts, changed if last is None or (changed is not None and changed > last) else last)
    return out


def _recent_done(conn: Connection, rows: Sequence[Any], now: datetime, actor: Actor) -> dict[str, int]:
    """Conversations each running batch of `rows` made in the throughput window, in one query for all of them."""
    running = [row["id"] for row in rows if row["status"] == "running"]
    if not running:
        return {}
    since = now - timedelta(seconds=get_settings().batch_throughput_window_s)
    # conversations of the window (the created_at index): cost follows the window, not the batch size
    return {batch_id: int(n) for batch_id, n in conn.execute(
        sa.select(conversations.c.batch_id, sa.func.count()).select_from(conversations)
        .where(conversations.c.created_at >= since, conversations.c.batch_id.in_(running),
               where(actor, Action.VIEW, Kind.CONVERSATION, conversations.c.owner_id))
        .group_by(conversations.c.batch_id))}


def _throughput_per_min(row: Any, recent: int, now: datetime) -> float:
    window = get_settings().batch_throughput_window_s
    started = row["started_at"]
    span = window if started is None else min(window, max((now - started).total_seconds(), 1.0))
    return round(recent * 60.0 / span, 2)


def _duration_s(row: Any, now: datetime) -> float | None:
    """Seconds from the first claim to the end (or to now while unfinished); None before it started."""
    if row["started_at"] is None:
        return None
    return max(((row["finished_at"] or now) - row["started_at"]).total_seconds(), 0.0)


def _status_dict(row: Any, now: datetime, actor: Actor, names: dict[str, str],
                 counted: tuple[dict[str, int], datetime | None], recent: dict[str, int]) -> dict[str, Any]:
    counts, last_item_change = counted
    interrupted = is_interrupted(row["status"], row["lease_expires_at"], last_item_change, now)
    state, reason = shown_state(row["status"], row["status_reason"], counts, interrupted=interrupted,
                                pause_kind=row["pause_kind"], now=now)
    throughput = _throughput_per_min(row, recent.get(row["id"], 0), now) if row["status"] == "running" else 0.0
    duration = _duration_s(row, now)
    finished = row["status"] in TERMINAL
    remaining = counts["pending"] + counts["running"]
    eta = math.ceil(remaining / throughput * 60.0) if throughput > 0 and remaining else (0 if not remaining else None)
    total = int(row["total_items"])
    return {
        "id": row["id"],
        "name": row["name"],
        "template": row["template"],
        "model": row["model"],
        "state": row["status"],
        "status_reason": row["status_reason"],
        "pause_kind": row["pause_kind"],
        "total": total,
        "counts": counts,
        **counts,
        "progress": round((counts["done"] + counts["failed"] + counts["skipped"]) / total, 4) if total else 0.0,
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
        "cache_read_tokens": int(row["cache_read_tokens"]),
        "cache_creation_tokens": int(row["cache_creation_tokens"]),
        "tokens": int(row["input_tokens"]) + int(row["output_tokens"]),
        "cost_usd": round(float(row["cost_usd"]), 6),
        "judge_cost_usd": round(float(row["judge_cost_usd"] or 0.0), 6),
        "mode": row["mode"],
        "budget_usd": row["budget_usd"],
        "throughput_per_min": throughput,
        "final_throughput_per_min": round(counts["done"] * 60.0 / max(duration, 1.0), 2)
        if finished and duration is not None else None,
        "duration_s": duration,
        "eta_s": eta,
        "concurrency": int(row["concurrency"]),
        "turns": (row["config"] or {}).get("turns"),
        "rate_limit_wait_s": _rate_limit_wait_s(row["status"], row["status_reason"]),
        "created_by": row["created_by"],
        "owner_id": row["owner_id"],
        # the owner by the name they have now (the name at creation when they are gone)
        "owner": names.get(row["owner_id"] or "") or row["created_by"],
        "may_act": may(actor, Action.ACT, Kind.BATCH, row["owner_id"]),  # resume, retry, pause, cancel
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "updated_at": _iso(row["updated_at"]),
        "finished_at": _iso(row["finished_at"]),
        "lease_owner": row["lease_owner"],
        "lease_expires_at": _iso(row["lease_expires_at"]),
        "interrupted": interrupted,
        # what a person reads: derived from the state and the counts above, never contradicting them
        "shown_state": state,
        "shown_reason": reason,
    }


def _rate_limit_wait_s(status: str, reason: str | None) -> int | None:
    """The wait `note_rate_limit_wait` put on a running batch, or None."""
    if status != "running" or not reason or not reason.startswith(RATE_LIMIT_WAIT_PREFIX):
        return None
    number = reason[len(RATE_LIMIT_WAIT_PREFIX):].removesuffix(" s")
    return int(number) if number.isdigit() else None


def get_batch_status(engine: Engine, batch_id: str) -> dict[str, Any]:
    """State, item counts (done/failed/pending/running/skipped), tokens, cost, throughput/min, ETA and times."""
    actor = current_actor(engine)
    with engine.connect() as conn:
        row = _batch_row(conn, batch_id, actor)
        now = utcnow()
        status = _status_dict(row, now, actor, names_of(engine, [row["owner_id"]]),
                              _counts(conn, [row["id"]])[row["id"]], _recent_done(conn, [row], now, actor))
        status["submissions"] = _submissions(conn, batch_id)
        return status


_REMOTE_COUNTS = ("processing", "succeeded", "errored", "expired", "canceled")


def _submissions(conn: Connection, batch_id: str) -> list[dict[str, Any]]:
    """A batch's remote Message Batches, oldest first: remote id, state, requests and the remote per-state counts."""
    rows = conn.execute(sa.select(
        message_batch_submissions.c.id, message_batch_submissions.c.remote_id, message_batch_submissions.c.state,
        message_batch_submissions.c.request_count, message_batch_submissions.c.request_bytes,
        message_batch_submissions.c.counts, message_batch_submissions.c.results_done,
        message_batch_submissions.c.last_error, message_batch_submissions.c.created_at,
        message_batch_submissions.c.submitted_at, message_batch_submissions.c.ended_at)
        .where(message_batch_submissions.c.batch_id == batch_id)
        .order_by(message_batch_submissions.c.created_at, message_batch_submissions.c.id)).mappings().all()
    return [{**dict(r), "counts": {k: int((r["counts"] or {}).get(k, 0)) for k in _REMOTE_COUNTS},
             "created_at": _iso(r["created_at"]), "submitted_at": _iso(r["submitted_at"]),
             "ended_at": _iso(r["ended_at"])} for r in rows]


def _listing(actor: Any, status: str | Sequence[str] | None, owner_id: str | None) -> list[sa.ColumnElement[bool]]:
    """The conditions of a list of the batches `actor` may see, in the states `status`, of `owner_id` (each optional)."""
    states = [] if not status else [status] if isinstance(status, str) else list(status)
    unknown = [s for s in states if s not in BATCH_STATES]
    if unknown:
        raise _refuse(f"There is no batch state {unknown[0][:60]!r}; choose one of: {', '.join(BATCH_STATES)}.",
                      ErrorCode.UNKNOWN_STATE, "status")
    return ([_visible(actor)] + ([batch_jobs.c.status.in_(states)] if states else [])
            + ([batch_jobs.c.owner_id == owner_id] if owner_id else []))


def _whole(name: str, value: int, most: int | None = None) -> int:
    """`value` if it is a whole number from 1 (to `most`); else refused, naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (most is not None and value > most):
        upto = f" to {most:,}" if most is not None else ""
        raise _refuse(f"The {name} must be a whole number from 1{upto}.", ErrorCode.INVALID_LIMIT, name)
    return value


def list_batches(
    engine: Engine, *, status: str | Sequence[str] | None = None, owner_id: str | None = None, limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest batches first of those the actor may see (only `owner_id`'s, if given), as `get_batch_status` says."""
    actor = current_actor(engine)
    where = _listing(actor, status, owner_id)
    _whole("limit", limit, get_settings().list_max_rows)
    query = sa.select(batch_jobs).where(*where).order_by(batch_jobs.c.created_at.desc(), batch_jobs.c.id)
    now = utcnow()
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        names = names_of(engine, (row["owner_id"] for row in rows))
        counted = _counts(conn, [row["id"] for row in rows])
        recent = _recent_done(conn, rows, now, actor)
        return [_status_dict(row, now, actor, names, counted[row["id"]], recent) for row in rows]


def batches_page(engine: Engine, *, page: int = 1, page_size: int = 20, status: str | Sequence[str] | None = None,
                 owner_id: str | None = None) -> Page:
    """Page `page` of `list_batches` (newest first) and how many batches the actor may see in all."""
    where = _listing(current_actor(engine), status, owner_id)
    page, page_size = _whole("page", page), _whole("limit", page_size, get_settings().list_max_rows)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(batch_jobs).where(*where)).scalar_one())
    rows = list_batches(engine, status=status, owner_id=owner_id, limit=page_size, offset=(page - 1) * page_size)
    return Page(rows, total, page, page_size)


def resolve_batch_id(engine: Engine, text: str) -> str:
    """The full id of the batch whose id is `text` or starts with it (a short id, e.g. its first 8 characters)."""
    wanted = text.strip().lower()
    if not wanted:
        raise _refuse("Give a batch id (its first 8 characters are enough).", ErrorCode.UNKNOWN_BATCH, "batch_id")
    with engine.connect() as conn:
        ids = conn.execute(sa.select(batch_jobs.c.id).where(
            batch_jobs.c.id.startswith(wanted, autoescape=True), _visible(current_actor(engine))).limit(2)
        ).scalars().all()
    if not ids:
        message = f"There is no batch whose id starts with {wanted[:40]!r}."
        raise NotFoundError(message, code=ErrorCode.UNKNOWN_BATCH, field="batch_id", user_message=message)
    if len(ids) > 1:
        raise _refuse(f"More than one batch id starts with {wanted[:40]!r}; give more characters.",
                      ErrorCode.AMBIGUOUS_BATCH, "batch_id")
    return str(ids[0])


def batch_names(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """Id, name and creation time of the newest batches the actor may see (no counts), for a picker."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(batch_jobs.c.id, batch_jobs.c.name, batch_jobs.c.created_at)
                            .where(_visible(current_actor(engine))).order_by(batch_jobs.c.created_at.desc(), batch_jobs.c.id).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def failed_items(engine: Engine, batch_id: str, *, limit: int = 1_000) -> list[dict[str, Any]]:
    """The failed items of a batch: index, params, attempts, last error and its code."""
    return failed_items_page(engine, batch_id, page=1, page_size=limit).rows


def failed_items_page(engine: Engine, batch_id: str, *, page: int = 1, page_size: int = 50) -> Page:
    """One page of a batch's failed items (by index) and how many failed in all."""
    page, page_size = max(1, int(page)), max(1, int(page_size))
    failed = (batch_items.c.batch_id == batch_id, batch_items.c.status == "failed")
    with engine.connect() as conn:
        _batch_row(conn, batch_id, current_actor(engine))
        total = conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(*failed)).scalar_one()
        rows = conn.execute(
            sa.select(batch_items.c.item_index, batch_items.c.params, batch_items.c.attempts,
                      batch_items.c.last_error, batch_items.c.last_error_code, batch_items.c.updated_at)
            .where(*failed).order_by(batch_items.c.item_index)
            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([{**dict(r), "updated_at": _iso(r["updated_at"])} for r in rows], int(total), page, page_size)


LIMIT_LABELS = {
    "requests": "requests per minute",
    "input_tokens": "input tokens per minute",
    "output_tokens": "output tokens per minute",
}


def binding_limit(input_per_call: int, output_per_call: int) -> dict[str, Any]:
    """Which of the three configured rate limits holds conversations back, and how many a minute each allows.

    The limits work together: a call goes only when all three have room, so the one that allows
    the fewest conversations a minute sets the pace. `text` says it for a person, e.g. "bound by
    output tokens per minute (16,000): ~33 conversations/min".
    """
    settings = get_settings()
    limits = {"requests": settings.rate_limit_rpm, "input_tokens": settings.rate_limit_input_tpm,
              "output_tokens": settings.rate_limit_output_tpm}
    per_call = {"requests": 1, "input_tokens": max(input_per_call, 1), "output_tokens": max(output_per_call, 1)}
    allows = {name: limits[name] / per_call[name] for name in limits}
    bound = min(allows, key=lambda name: allows[name])  # a tie goes to requests, the first
    per_min = allows[bound]
    shown = f"{per_min:,.0f}" if per_min >= 10 else f"{per_min:,.1f}"
    return {"bound_by": bound, "label": LIMIT_LABELS[bound], "limit": limits[bound], "per_min": per_min,
            "allows": allows, "limits": limits, "per_call": per_call,
            "text": f"bound by {LIMIT_LABELS[bound]} ({limits[bound]:,}): ~{shown} conversations/min"}


def estimate(template: str, count: int, model: str | None = None, *, turns: int | None = None,
             engine: Engine | None = None) -> dict[str, Any]:
    """Calls, tokens, dollar cost, and the time a batch would take at the pace of the binding rate limit.

    With `engine`, the tokens per conversation are the template's measured means (its latest finished
    conversations) when it has any; otherwise, and without `engine`, the static estimate from the prompt.
    """
    settings = get_settings()
    n = _validate_count(count)
    model = model or settings.default_model
    turns = settings.generation_default_turns if turns is None else turns
    measured = measured_tokens_per_call(engine, template, turns) if engine is not None else None
    input_per_call, output_per_call = measured[:2] if measured else _tokens_per_call(template, model, turns)
    usage = {"input_tokens": input_per_call * n, "output_tokens": output_per_call * n}
    binding = binding_limit(input_per_call, output_per_call)
    return {
        "calls": n,
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "tokens": usage["input_tokens"] + usage["output_tokens"],
        "cost_usd": round(cost_usd(model, usage), 4),
        "minutes": round(n / binding["per_min"], 2),
        "seconds": math.ceil(n * 60.0 / binding["per_min"]),
        "model": model,
        "rate_limit_rpm": settings.rate_limit_rpm,
        "binding": binding,
        "measured_from": measured[2] if measured else 0,  # conversations averaged; 0: the static estimate
        # the same usage at the Message Batches discount; its time is the API's (within 24 h), not the rate limit's
        "batch_cost_usd": round(cost_usd(model, usage, mode="message_batches"), 4),
    }


def measured_tokens_per_call(engine: Engine, template: str, turns: int) -> tuple[int, int, int] | None:
    """Mean input and output tokens of one conversation of `template`, and how many it averaged; None without history.

    The sample is the template's latest settings.estimate_history_conversations finished conversations,
    and counts as history from settings.estimate_history_min_conversations on.
    Output is a mean per message times `turns`, since a batch may ask for other turns than its history
    had; the input (the prompt, plus any retried malformed replies) barely depends on them.
    """
    sample = (sa.select(conversations.c.input_tokens, conversations.c.output_tokens, conversations.c.turn_count)
              .where(conversations.c.template == template, conversations.c.status == "ok",
                     conversations.c.output_tokens > 0, conversations.c.turn_count > 0,
                     where(current_actor(engine), Action.VIEW, Kind.CONVERSATION, conversations.c.owner_id))
              .order_by(conversations.c.created_at.desc())
              .limit(get_settings().estimate_history_conversations).subquery())
    with engine.connect() as conn:
        found, mean_in, out_total, messages = conn.execute(sa.select(
            sa.func.count(), sa.func.avg(sample.c.input_tokens), sa.func.sum(sample.c.output_tokens),
            sa.func.sum(sample.c.turn_count))).one()
    if found < get_settings().estimate_history_min_conversations:
        return None
    return (max(1, math.ceil(float(mean_in))), max(1, math.ceil(float(out_total) / float(messages) * turns)),
            int(found))


def _tokens_per_call(template: str, model: str, turns: int) -> tuple[int, int]:
    """Expected input and output tokens of one conversation's call."""
    tmpl = get_template(template)
    params = GenerationParams(template=template, persona=tmpl.default_persona, emotion=tmpl.default_emotion,
                              topic=tmpl.default_topic, turns=turns, model=model)
    system, user_message = build_prompt(params)
    return max(1, get_settings().estimated_tokens(system + user_message)), estimate_output_tokens(turns)


def batch_binding(status: dict[str, Any]) -> dict[str, Any] | None:
    """`binding_limit` for a batch as `get_batch_status` describes it; None if its template is gone."""
    try:
        per_call = _tokens_per_call(status["template"], status["model"], int(status.get("turns") or get_settings().generation_default_turns))
    except ValidationError:
        return None
    return binding_limit(*per_call)


RATE_LIMIT_WAIT_PREFIX = "waiting for rate limit: "


def note_rate_limit_wait(engine: Engine, batch_id: str, seconds: float | None) -> None:
    """Show on a running batch how long its calls have waited for the rate limiter (None: clear it).

    Written into status_reason, which nothing else sets on a running batch; a reason of another
    kind is never overwritten, and clearing removes only this kind.
    """
    ours = batch_jobs.c.status_reason.startswith(RATE_LIMIT_WAIT_PREFIX, autoescape=True)
    if seconds is None:  # in any state: the batch may have finished since
        where, reason = ours, None
    else:
        where = sa.and_(batch_jobs.c.status == "running", sa.or_(batch_jobs.c.status_reason.is_(None), ours))
        reason = f"{RATE_LIMIT_WAIT_PREFIX}{math.ceil(seconds)} s"

    def _write() -> None:
        with write_tx(engine) as conn:
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id, where).values(status_reason=reason))

    run_db(_write)


# ---- changing state ------------------------------------------------------------------------------------


def _locked_row(conn: Connection, batch_id: str, actor: Actor, verb: str) -> Any:
    """The batch row, locked, if `actor` may act on it (to `verb` it).

    One they may not see is not found, in the words an unknown id gets; one they see but may not
    act on (a reviewer, someone else's batch) is refused as not theirs. Both engines answer alike:
    on Postgres FOR UPDATE reaches only rows the update policy allows, as `_visible(ACT)` does here.
    """
    query = sa.select(batch_jobs).where(batch_jobs.c.id == batch_id, _visible(actor, Action.ACT)).with_for_update()
    row = conn.execute(query).mappings().first()
    if row is not None:
        return row
    if conn.execute(sa.select(batch_jobs.c.id).where(batch_jobs.c.id == batch_id, _visible(actor))).first() is None:
        raise _no_batch(batch_id)
    message = f"Batch {batch_id} is not yours: only its owner or an admin can {verb} it."
    raise NotFoundError(message, code=ErrorCode.PERMISSION_DENIED, field="batch_id", user_message=message)


def pause_batch(engine: Engine, batch_id: str, *, reason: str | None = None) -> None:
    """Stop a queued or running batch from taking new items; in-flight items still finish and are kept."""
    actor = current_actor(engine)

    def _write() -> None:
        with write_tx(engine) as conn:
            row = _locked_row(conn, batch_id, actor, "pause")
            if row["status"] == "paused" and row["pause_kind"] == "user":
                return
            check_transition(batch_id, row["status"], "paused")
            now = utcnow()
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
                status="paused", pause_kind="user", status_reason=reason or f"paused by {actor.label}",
                updated_at=now))
            audit(conn, AuditAction.BATCH_PAUSE, Kind.BATCH, batch_id, {"was": row["status"]}, actor=actor)

    run_db(_write)


def set_budget(engine: Engine, batch_id: str, budget_usd: float | None) -> None:
    """Give a batch a new spend cap (None: none); a batch the cap paused then continues on Resume. Audited."""
    actor = current_actor(engine)
    budget_usd = validated_budget(budget_usd)

    def _write() -> None:
        with write_tx(engine) as conn:
            row = _locked_row(conn, batch_id, actor, "change the budget of")
            if row["status"] in TERMINAL:
                check_transition(batch_id, row["status"], "queued")
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
                budget_usd=budget_usd, updated_at=utcnow()))
            audit(conn, AuditAction.BATCH_BUDGET, Kind.BATCH, batch_id,
                  {"was": row["budget_usd"], "budget_usd": budget_usd}, actor=actor)

    run_db(_write)


def cancel_batch(engine: Engine, batch_id: str) -> int:
    """Cancel a batch: pending and running items become skipped, finished ones are kept. Returns how many were skipped.

    A reply still arriving for a skipped item is kept (the item becomes done): see the module docstring.
    """
    actor = current_actor(engine)

    def _write() -> int:
        with write_tx(engine) as conn:
            row = _locked_row(conn, batch_id, actor, "cancel")
            check_transition(batch_id, row["status"], "cancelled")
            now = utcnow()
            skipped = conn.execute(batch_items.update().where(
                batch_items.c.batch_id == batch_id, batch_items.c.status.in_(("pending", "running"))).values(
                status="skipped", claimed_by=None, claimed_at=None, updated_at=now)).rowcount
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
                status="cancelled", pause_kind=None, status_reason=f"cancelled by {actor.label}", finished_at=now,
                updated_at=now))
            audit(conn, AuditAction.BATCH_CANCEL, Kind.BATCH, batch_id, {"was": row["status"], "skipped": skipped},
                  actor=actor)
            return int(skipped)

    return run_db(_write)


def resume_batch(engine: Engine, batch_id: str, *, failed_only: bool = False) -> int:
    """Queue a paused, failed or interrupted batch again; done items are never redone.

    Default: failed items (attempts reset) and running items whose claim has expired (their
    worker is gone) go back to pending; items a live worker is still generating stay its.
    Returns how many items the batch now has to process. `failed_only`:
    only failed items are requeued; returns how many. Each resume writes a batch_resumes row
    (resumed_by: the person's id) and an audit row, in its own transaction.
    """
    actor = current_actor(engine)

    def _write() -> int:
        with write_tx(engine) as conn:
            row = _locked_row(conn, batch_id, actor, "retry the failed items of" if failed_only else "resume")
            now = utcnow()
            previous = row["status"]
            interrupted = previous == "running" and (
                row["lease_expires_at"] is None or row["lease_expires_at"] < now)
            if previous == "running" and not interrupted:
                raise _refuse(f"Batch {batch_id} is running (worker {row['lease_owner']}); there is nothing to "
                              "resume.", ErrorCode.INVALID_TRANSITION, "status")
            if previous == "queued":
                raise _refuse(f"Batch {batch_id} is already queued; a worker will pick it up.",
                              ErrorCode.INVALID_TRANSITION, "status")
            if previous in TERMINAL:
                check_transition(batch_id, previous, "queued")
            failed = batch_items.c.status == "failed"
            requeued = int(conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id, failed)
                                        .values(status="pending", attempts=0, lost_attempts=0,
                                                updated_at=now)).rowcount)
            if not failed_only:
                conn.execute(batch_items.update().where(
                    batch_items.c.batch_id == batch_id, batch_items.c.status == "running", claim_expired(now),
                    batch_items.c.submission_id.is_(None)).values(  # a remote batch's items are its collector's
                    status="pending", claimed_by=None, claimed_at=None, updated_at=now))
                requeued = int(conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
                    batch_items.c.batch_id == batch_id, batch_items.c.status == "pending")).scalar_one())
            elif previous == "failed" and requeued == 0:
                raise _refuse(f"Batch {batch_id} has no failed items to retry; resume it instead (its pending items "
                              "were never tried).", ErrorCode.NOTHING_TO_RETRY, "status")
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
                status="queued", pause_kind=None, status_reason=f"resumed by {actor.label}", lease_owner=None,
                lease_expires_at=None, finished_at=None, updated_at=now))
            was = "interrupted" if interrupted else previous
            conn.execute(batch_resumes.insert().values(
                batch_id=batch_id, resumed_by=actor.user_id, resumed_at=now, failed_only=failed_only,
                requeued_count=requeued, previous_status=was))
            audit(conn, AuditAction.BATCH_RETRY_FAILED if failed_only else AuditAction.BATCH_RESUME, Kind.BATCH,
                  batch_id, {"was": was, "requeued": requeued}, actor=actor)
            return requeued

    return run_db(_write)


def resume_history(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    """A batch's resumes, oldest first, each with who resumed it by name (`resumed_by_name`)."""
    with engine.connect() as conn:
        _batch_row(conn, batch_id, current_actor(engine))
        rows = conn.execute(sa.select(batch_resumes).where(batch_resumes.c.batch_id == batch_id)
                            .order_by(batch_resumes.c.id)).mappings().all()
    names = names_of(engine, (r["resumed_by"] for r in rows))
    return [_resume(r, names) for r in rows]


def _resume(r: Any, names: dict[str, str]) -> dict[str, Any]:
    return {**dict(r), "resumed_at": _iso(r["resumed_at"]), "resumed_by_name": names.get(r["resumed_by"] or "")}


def resume_history_page(engine: Engine, batch_id: str, *, page: int = 1, page_size: int = 20) -> Page:
    """Page `page` of a batch's resumes, newest first, and how many resumes it had in all."""
    page, page_size = _whole("page", page), _whole("limit", page_size, get_settings().list_max_rows)
    mine = batch_resumes.c.batch_id == batch_id
    with engine.connect() as conn:
        _batch_row(conn, batch_id, current_actor(engine))
        total = int(conn.execute(sa.select(sa.func.count()).select_from(batch_resumes).where(mine)).scalar_one())
        rows = conn.execute(sa.select(batch_resumes).where(mine).order_by(batch_resumes.c.id.desc())
                            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    names = names_of(engine, (r["resumed_by"] for r in rows))
    return Page([_resume(r, names) for r in rows], total, page, page_size)


def batch_history(engine: Engine, batch_id: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """What was done to a batch, oldest first, from the audit trail: when, who (by name), action and detail.

    Whoever may see the batch sees its history (Postgres' audit policy says the same).
    """
    actor = current_actor(engine)
    with engine.connect() as conn:
        _batch_row(conn, batch_id, actor)
        rows = conn.execute(
            sa.select(audit_events.c.created_at, audit_events.c.actor_id, audit_events.c.actor_label,
                      audit_events.c.action, audit_events.c.detail)
            .where(audit_events.c.target_kind == Kind.BATCH.value, audit_events.c.target_id == batch_id)
            .order_by(audit_events.c.created_at, audit_events.c.id).limit(limit)).mappings().all()
    names = names_of(engine, (r["actor_id"] for r in rows))
    return [{"at": _iso(r["created_at"]), "actor_id": r["actor_id"],
             "by": names.get(r["actor_id"] or "") or r["actor_label"] or "system",
             "action": r["action"], "detail": r["detail"] or {}} for r in rows]


def judge_asked(engine: Engine, batch_id: str) -> bool:
    """Whether the batch was created with the LLM judge on (read as the system: the worker's question)."""
    with read_conn(engine, actor=system_actor()) as conn:
        config = conn.execute(sa.select(batch_jobs.c.config).where(batch_jobs.c.id == batch_id)).scalar()
    return bool((config or {}).get("judge"))


def cost_by_kind(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A batch's tokens and dollars by kind (input, output, cache reads, cache writes; the judge apart).

    Priced from the batch's totals at its model's and mode's prices (Message Batches: the batch
    share, 1-hour cache writes; online: 5-minute writes), which is what the per-call costs add up to.
    """
    usage = {"input_tokens": status["input_tokens"], "output_tokens": status["output_tokens"],
             "cache_read_input_tokens": status["cache_read_tokens"],
             "cache_creation_input_tokens": status["cache_creation_tokens"]}
    batch_mode = status["mode"] == "message_batches"
    cost = price(status["model"], usage, mode=status["mode"], ttl="1h" if batch_mode else "5m")
    rows = [{"kind": "input", "tokens": usage["input_tokens"], "cost_usd": cost.input},
            {"kind": "output", "tokens": usage["output_tokens"], "cost_usd": cost.output},
            {"kind": "cache reads", "tokens": usage["cache_read_input_tokens"], "cost_usd": cost.cache_read},
            {"kind": "cache writes", "tokens": usage["cache_creation_input_tokens"], "cost_usd": cost.cache_write}]
    if status.get("judge_cost_usd"):
        rows.append({"kind": "judge", "tokens": None, "cost_usd": status["judge_cost_usd"]})
    return rows
