"""Message Batches mode: a batch's items go to the model in remote Message Batches, at the batch discount.

The worker that holds a `message_batches` batch's lease runs `RemoteBatchRun` instead of calling
the model item by item. Each remote batch is one `message_batch_submissions` row:

    pending items --(one transaction: row "submitting" + items running with its submission_id)-->
    create --(remote id stored)--> in_progress --(retrieve every poll interval)--> ended
    --(results streamed, committed in chunks, `results_done` advanced with each)--> collected

- Requests: `custom_id` is the item's stable id, "<batch id>_<item index>"; `params` are what the
  online call sends (core.generation.request, the same prefix, with the 1-hour cache). A job is split into several remote
  batches by settings.message_batch_max_requests and message_batch_max_bytes.
- Exactly once: a succeeded result is committed by the online item commit
  (core.batches.checkpoints.commit_item), keyed (batch_id, item_index), with a conversation id derived
  from (remote id, custom_id), so a result committed again after a kill adds neither a conversation
  nor its usage a second time. Failures and the resume point (`results_done`) of a chunk are written
  in one transaction, conditioned on the item still being in this submission, so a replay changes nothing.
- Outcomes: `errored` with a retryable error type (api, overloaded, rate limit, timeout), `expired`,
  `canceled`, a reply that is not a usable conversation, and an item without a result line go back
  to pending for the next submission, counting an attempt (settings.item_max_attempts); any other
  error type (invalid_request_error, ...) fails the item with its reason.
- Pause stops new submissions; the remote batches in flight are still collected. Cancel also
  cancels the remote batches (their succeeded results are kept, as a late reply online is).
  Resume continues from the stored rows. The spend cap (core.batches.budget) is asked before each
  submission, which is cut to what fits; when nothing fits the batch pauses, "budget reached".
- create is never retried blindly: a request whose answer was lost may have created a batch.
- create's body is built as bytes, each request encoded once as it is added, and streamed from them
  (`RequestsBody`): `messages.batches.create` would hold the request dicts, their JSON text and its
  bytes at once, a worker at 500 MB for 10,000 requests of 9 KB (bench/message_batches_worker.py).

Finding a remote batch whose id was not stored (the worker died between create and storing it, or
create's answer was lost): the row stays "submitting" and is reconciled by listing the account's
recent batches, newest first, back to the row's creation (less settings.message_batch_match_skew_s).
Candidates are those no submission row names, with as many requests in all as the row. The API shows
a batch's custom_ids only in its results, so a candidate is matched only once it has ended, by its
results' custom_ids being exactly the row's; while an unended candidate exists nothing is submitted
again (it may be ours). No candidate (create never reached the service), or none whose custom_ids
match: the row's items are submitted again. Limits: a batch created more than the skew before its
row, or missing from the listing, would be submitted a second time; a Cancel while the id is unknown
reaches the remote batch only once it is matched (it has ended by then, so nothing is left to cancel).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.batches import checkpoints
from core.batches.budget import room
from core.batches.judging import BatchJudge
from core.batches.leases import OPEN_SUBMISSION_STATES, ClaimedItem, requeued_status
from core.batches.states import budget_pause_reason
from core.config import get_settings
from core.errorlog import record
from core.errors import AppError, ErrorCode, GenerationError, ValidationError, classify
from core.generation import GenerationParams
from core.generation.request import ItemRequest, aitem_request
from core.generation.service import parse_reply
from core.llm.pricing import price
from core.llm.types import LLMResult, Usage
from core.redact import redact_cut
from core.resilience import async_retry_policy, get_breaker, run_db
from core.store.schema import batch_items, batch_jobs, message_batch_submissions, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["MODE", "RETRYABLE_ERROR_TYPES", "RemoteBatchRun", "RequestsBody", "custom_id"]

MODE = "message_batches"
RETRYABLE_ERROR_TYPES = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})
# a request JSON's share of the batch body beyond its own bytes: the comma between two of them
_PER_REQUEST_OVERHEAD = 1
_OPEN, _CLOSE = b'{"requests":[', b"]}"
_ENVELOPE_BYTES = len(_OPEN) + len(_CLOSE)
_CREATE_PATH = "/v1/messages/batches"
_CHUNK_BYTES = 64 * 1024  # of the body, a write at a time
_CONVERSATION_NS = uuid.UUID("5b0e1f52-6a3c-4a8e-9d0f-1b7c2e4d6a80")


def custom_id(batch_id: str, item_index: int) -> str:
    """An item's stable id in a remote batch (at most 47 characters of [a-zA-Z0-9_-])."""
    return f"{batch_id}_{item_index}"


def _index_of(batch_id: str, cid: str) -> int | None:
    prefix, _, index = cid.rpartition("_")
    return int(index) if prefix == batch_id and index.isdigit() else None


def _conversation_id(remote_id: str, cid: str) -> str:
    """The same id every time the same result is committed: a replay adds no second usage."""
    return str(uuid.uuid5(_CONVERSATION_NS, f"{remote_id}/{cid}"))


# ---- the remote calls (module functions, looked up at each call: the crash tests wrap them) --------------------


@dataclass
class RequestsBody:
    """The body of one create, `{"requests":[...]}`, built a request at a time and streamed.

    The requests' JSON lies comma-joined in one buffer, so the body is in memory once, in one
    allocation that goes back to the system when it is dropped (10,000 pieces would stay in the heap).
    """

    _joined: bytearray = field(default_factory=bytearray)
    _spans: list[tuple[int, int, int]] = field(default_factory=list)  # (item index, start, end) in _joined

    def add(self, index: int, request: bytes) -> None:
        if self._spans:
            self._joined += b","
        start = len(self._joined)
        self._joined += request
        self._spans.append((index, start, len(self._joined)))

    def size_with(self, request: bytes) -> int:
        """The body's bytes once `request` is added."""
        return self.size + len(request) + (_PER_REQUEST_OVERHEAD if self._spans else 0)

    def __len__(self) -> int:
        return len(self._spans)

    @property
    def size(self) -> int:
        return _ENVELOPE_BYTES + len(self._joined)

    @property
    def indexes(self) -> list[int]:
        return [index for index, _, _ in self._spans]

    def only(self, indexes: set[int]) -> RequestsBody:
        """The body of just these items' requests."""
        kept = RequestsBody()
        for index, start, end in self._spans:
            if index in indexes:
                kept.add(index, bytes(self._joined[start:end]))
        return kept

    async def chunks(self) -> AsyncIterator[bytes]:
        yield _OPEN
        view = memoryview(self._joined)
        for start in range(0, len(view), _CHUNK_BYTES):
            yield bytes(view[start:start + _CHUNK_BYTES])
        yield _CLOSE


async def _remote_create(sdk: Any, body: RequestsBody) -> Any:
    from anthropic.types.messages import MessageBatch  # loaded by then: the worker preloads the SDK

    # what sdk.messages.batches.create sends, from bytes already encoded; with its length, so not chunked
    return await sdk.post(_CREATE_PATH, cast_to=MessageBatch, content=body.chunks(), options={
        "headers": {"Content-Type": "application/json", "Content-Length": str(body.size)}})


async def _remote_retrieve(sdk: Any, remote_id: str) -> Any:
    return await sdk.messages.batches.retrieve(remote_id)


async def _remote_cancel(sdk: Any, remote_id: str) -> Any:
    return await sdk.messages.batches.cancel(remote_id)


async def _remote_results(sdk: Any, remote_id: str) -> Any:
    return await sdk.messages.batches.results(remote_id)


def _counts_of(remote: Any) -> dict[str, int]:
    c = remote.request_counts
    return {k: int(getattr(c, k, 0) or 0) for k in ("processing", "succeeded", "errored", "expired", "canceled")}


# ---- the store -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    id: str
    remote_id: str | None
    state: str
    item_indexes: list[int]
    request_count: int
    results_done: int
    created_at: datetime


@dataclass(frozen=True)
class _Failure:
    index: int
    code: ErrorCode
    message: str
    retry: bool
    usage: Usage | None = None  # an unusable reply that was paid for
    cost_usd: float = 0.0


def _open_submissions(engine: Engine, batch_id: str) -> list[Submission]:
    t = message_batch_submissions
    with read_conn(engine) as conn:
        rows = conn.execute(sa.select(t.c.id, t.c.remote_id, t.c.state, t.c.item_indexes, t.c.request_count,
                                      t.c.results_done, t.c.created_at)
                            .where(t.c.batch_id == batch_id, t.c.state.in_(OPEN_SUBMISSION_STATES))
                            .order_by(t.c.created_at, t.c.id)).all()
    return [Submission(r.id, r.remote_id, r.state, [int(i) for i in r.item_indexes], int(r.request_count),
                       int(r.results_done), r.created_at) for r in rows]


def _batch_status(engine: Engine, batch_id: str) -> str | None:
    with read_conn(engine) as conn:
        return conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == batch_id)).scalar()


def _pending_items(engine: Engine, batch_id: str, limit: int) -> list[Any]:
    with read_conn(engine) as conn:
        return list(conn.execute(sa.select(batch_items.c.id, batch_items.c.item_index, batch_items.c.params)
                                 .where(batch_items.c.batch_id == batch_id, batch_items.c.status == "pending")
                                 .order_by(batch_items.c.item_index).limit(limit)).all())


def _items_of(engine: Engine, batch_id: str, indexes: Sequence[int]) -> dict[int, Any]:
    with read_conn(engine) as conn:
        rows = conn.execute(sa.select(batch_items.c.id, batch_items.c.item_index, batch_items.c.params,
                                      batch_items.c.attempts, batch_items.c.status, batch_items.c.submission_id)
                            .where(batch_items.c.batch_id == batch_id,
                                   batch_items.c.item_index.in_(list(indexes)))).all()
    return {int(r.item_index): r for r in rows}


def _record_submission(engine: Engine, batch_id: str, submission_id: str, item_ids: list[int],
                       request_bytes: int) -> list[int]:
    """The submission row and its items marked in it, in ONE transaction; the item indexes it holds ([]: none)."""

    def _write() -> list[int]:
        now = utcnow()
        with write_tx(engine) as conn:
            status = conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == batch_id)
                                  .with_for_update()).scalar()  # the batch row first: the one lock order
            if status != "running":
                return []
            indexes = sorted(int(i) for i in conn.execute(batch_items.update().where(
                batch_items.c.id.in_(item_ids), batch_items.c.status == "pending").values(
                status="running", submission_id=submission_id, claimed_by=None, claimed_at=now, updated_at=now)
                .returning(batch_items.c.item_index)).scalars())
            if indexes:
                conn.execute(message_batch_submissions.insert().values(
                    id=submission_id, batch_id=batch_id, remote_id=None, state="submitting", item_indexes=indexes,
                    request_count=len(indexes), request_bytes=request_bytes, counts=None, results_done=0,
                    created_at=now, updated_at=now))
            return indexes

    return run_db(_write)


def _store_remote(engine: Engine, submission_id: str, remote: Any) -> None:
    """The remote batch's id and state on its row (still "submitting" only: a row is matched once)."""

    def _write() -> None:
        now = utcnow()
        ended = remote.processing_status == "ended"
        with write_tx(engine) as conn:
            conn.execute(message_batch_submissions.update().where(
                message_batch_submissions.c.id == submission_id, message_batch_submissions.c.state == "submitting")
                .values(remote_id=remote.id, state="ended" if ended else str(remote.processing_status),
                        counts=_counts_of(remote), submitted_at=now, ended_at=now if ended else None,
                        last_error=None, updated_at=now))

    run_db(_write)


def _update_state(engine: Engine, submission_id: str, remote: Any) -> None:
    def _write() -> None:
        now = utcnow()
        ended = remote.processing_status == "ended"
        with write_tx(engine) as conn:
            conn.execute(message_batch_submissions.update().where(
                message_batch_submissions.c.id == submission_id,
                message_batch_submissions.c.state.in_(("in_progress", "canceling")))
                .values(state="ended" if ended else str(remote.processing_status), counts=_counts_of(remote),
                        ended_at=now if ended else None, updated_at=now))

    run_db(_write)


def _note(engine: Engine, submission_id: str, message: str) -> None:
    def _write() -> None:
        with write_tx(engine) as conn:
            conn.execute(message_batch_submissions.update().where(message_batch_submissions.c.id == submission_id)
                         .values(last_error=message, updated_at=utcnow()))

    run_db(_write)


def _fail_items(conn: sa.Connection, batch_id: str, submission_id: str, failure: _Failure, now: datetime) -> bool:
    """One item of the submission back to pending (an attempt counted) or failed; False if it is not in it any more."""
    final = batch_items.c.attempts + 1 >= get_settings().item_max_attempts
    status = sa.case((final, "failed"), else_=requeued_status()) if failure.retry else sa.literal("failed")
    changed = conn.execute(batch_items.update().where(
        batch_items.c.batch_id == batch_id, batch_items.c.item_index == failure.index,
        batch_items.c.submission_id == submission_id, batch_items.c.status.in_(("running", "skipped"))).values(
        status=sa.case((batch_items.c.status == "skipped", "skipped"), else_=status),
        attempts=batch_items.c.attempts + 1, submission_id=None, last_error=failure.message,
        last_error_code=failure.code, claimed_by=None, claimed_at=None, updated_at=now)).rowcount == 1
    if changed and failure.usage is not None:  # paid for, though unusable: in the ledger once
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
            input_tokens=batch_jobs.c.input_tokens + failure.usage.input_tokens,
            output_tokens=batch_jobs.c.output_tokens + failure.usage.output_tokens,
            cost_usd=batch_jobs.c.cost_usd + failure.cost_usd, updated_at=now))
    return changed


def _settle_chunk(engine: Engine, batch_id: str, submission_id: str, failures: list[_Failure],
                  results_done: int) -> None:
    """A chunk's failures and the resume point after it, in one transaction."""

    def _write() -> None:
        now = utcnow()
        with write_tx(engine) as conn:
            conn.execute(sa.select(batch_jobs.c.id).where(batch_jobs.c.id == batch_id).with_for_update())
            for failure in failures:
                _fail_items(conn, batch_id, submission_id, failure, now)
            conn.execute(message_batch_submissions.update().where(
                message_batch_submissions.c.id == submission_id,
                message_batch_submissions.c.results_done < results_done).values(
                results_done=results_done, updated_at=now))

    run_db(_write)


def _finish_submission(engine: Engine, batch_id: str, submission_id: str, state: str, reason: str,
                       code: ErrorCode, *, count_attempt: bool) -> int:
    """The items still in the submission go back to pending (or failed when out of attempts); the row gets `state`."""

    def _write() -> int:
        now = utcnow()
        with write_tx(engine) as conn:
            conn.execute(sa.select(batch_jobs.c.id).where(batch_jobs.c.id == batch_id).with_for_update())
            left = conn.execute(sa.select(batch_items.c.item_index).where(
                batch_items.c.submission_id == submission_id,
                batch_items.c.status.in_(("running", "skipped")))).scalars().all()
            if count_attempt:
                for index in left:
                    _fail_items(conn, batch_id, submission_id, _Failure(int(index), code, reason, True), now)
            else:
                conn.execute(batch_items.update().where(batch_items.c.submission_id == submission_id).values(
                    status=sa.case((batch_items.c.status == "running", requeued_status()),
                                   else_=batch_items.c.status),
                    submission_id=None, claimed_at=None, updated_at=now))
            conn.execute(message_batch_submissions.update().where(message_batch_submissions.c.id == submission_id)
                         .values(state=state, last_error=reason if state == "failed" else None, updated_at=now))
            return len(left)

    return run_db(_write)


def _known_remote_ids(engine: Engine, remote_ids: Sequence[str]) -> set[str]:
    if not remote_ids:
        return set()
    with read_conn(engine) as conn:
        return set(conn.execute(sa.select(message_batch_submissions.c.remote_id).where(
            message_batch_submissions.c.remote_id.in_(list(remote_ids)))).scalars())


# ---- one batch ---------------------------------------------------------------------------------------------


async def _item_request(client: Any, params: dict[str, Any]) -> ItemRequest:
    """What the item asks, as online mode asks it, with the 1-hour cache (ValidationError if its params are unusable)."""
    return await aitem_request(GenerationParams(**params), mode=MODE, client=client, component="batch")


async def _encoded_request(client: Any, batch_id: str, index: int, params: dict[str, Any]) -> bytes:
    """One request of a remote batch as it goes in the body: compact JSON, UTF-8 (as the SDK encodes it)."""
    request = {"custom_id": custom_id(batch_id, index), "params": (await _item_request(client, params)).params()}
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _reply_of(message: Any, provider: str, request: ItemRequest) -> LLMResult:
    usage = Usage.from_api(getattr(message, "usage", None))
    model = str(getattr(message, "model", "") or request.model)
    text = "".join(getattr(b, "text", "") for b in getattr(message, "content", None) or []
                   if getattr(b, "type", "") == "text")
    return LLMResult(text=text, usage=usage, cost_usd=price(model, usage, mode=MODE, ttl=request.cache_ttl).total,
                     request_id=getattr(message, "id", None), model=model,
                     stop_reason=getattr(message, "stop_reason", None), attempts=1, provider=provider)


def _error_of(result: Any) -> tuple[str, str]:
    """(error type, message) of an errored result."""
    body = getattr(result, "error", None)
    inner = getattr(body, "error", None)
    kind = str(getattr(inner, "type", None) or getattr(body, "type", None) or "api_error")
    return kind, str(getattr(inner, "message", None) or kind)


class RemoteBatchRun:
    """Works one Message Batches batch while this worker holds its lease: submit, poll, collect."""

    def __init__(self, engine: Engine, batch_id: str, client: Any, *, stopped: Callable[[], bool],
                 sleep: Callable[[float], Awaitable[None]], judge: BatchJudge | None = None) -> None:
        self.engine = engine
        self.batch_id = batch_id
        self.client = client
        self.judge = judge or BatchJudge(engine, batch_id, client)
        self.stopped = stopped
        self.sleep = sleep
        self._next_poll: dict[str, float] = {}  # submission id -> loop time of its next retrieve (or reconcile)
        self.submitted = 0  # remote batches this run created
        self.committed = 0  # results saved as conversations by this run

    def _sdk(self) -> Any:
        return self.client.async_sdk()

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _call(self, step: str, fn: Callable[..., Awaitable[Any]], *args: Any, retry: bool = True) -> Any:
        """A Message Batches call through the claude breaker, and the retry policy unless `retry` is False."""
        breaker = get_breaker("claude")
        async for attempt in async_retry_policy(max_attempts=None if retry else 1):
            with attempt:
                breaker.before_call()
                try:
                    out = await fn(self._sdk(), *args)
                except Exception as exc:
                    err = classify(exc)
                    breaker.record_failure(err)
                    record(err, component="batch_worker", operation_id=self.batch_id,
                           attempt=attempt.retry_state.attempt_number, context={"step": step})
                    if err is exc:
                        raise
                    raise err from exc
                breaker.record_success()
        return out

    async def run(self) -> float | None:
        """Until the batch has nothing left in flight and nothing to submit, or the worker stops: None.

        Seconds until the next poll instead, when that is longer than a heartbeat and nothing else
        is to be done meanwhile: the worker parks the batch that long and works other batches.
        """
        loop = asyncio.get_running_loop()
        interval = get_settings().message_batch_poll_interval_s
        while not self.stopped():
            status = await self._db(_batch_status, self.engine, self.batch_id)
            subs = await self._db(_open_submissions, self.engine, self.batch_id)
            try:
                for sub in subs:
                    if self.stopped():
                        return None
                    await self._advance(sub, status, loop.time())
                if status == "running" and not self.stopped():
                    await self._submit_pending()
            except Exception as exc:  # noqa: BLE001 - classified; the next round goes on from what is stored
                from core.batches.worker import is_batch_fatal  # the worker imports this module

                err = classify(exc)
                if is_batch_fatal(err):
                    raise err from exc
                if err.error_id is None:
                    record(err, component="batch_worker", operation_id=self.batch_id, context={"step": "remote_batch"})
            subs = await self._db(_open_submissions, self.engine, self.batch_id)
            if not subs:
                status = await self._db(_batch_status, self.engine, self.batch_id)
                if status != "running" or not await self._db(_pending_items, self.engine, self.batch_id, 1):
                    return None
            due = min((self._next_poll[s.id] for s in subs if s.id in self._next_poll), default=loop.time() + interval)
            wait = min(max(0.0, due - loop.time()), interval)
            if subs and wait > get_settings().heartbeat_interval_s and all(
                    s.state in ("in_progress", "canceling") for s in subs):
                return wait
            await self.sleep(wait)
        return None

    async def _advance(self, sub: Submission, status: str | None, now: float) -> None:
        if sub.state == "submitting":
            if now >= self._next_poll.get(sub.id, 0.0):  # after a lost answer, the service gets a poll interval
                self._next_poll.pop(sub.id, None)
                await self._reconcile(sub, status)
            return
        if sub.state == "ended":
            await self._collect(sub)
            return
        if status == "cancelled" and sub.state == "in_progress" and sub.remote_id:
            remote = await self._call("cancel", _remote_cancel, sub.remote_id)
            await self._db(_update_state, self.engine, sub.id, remote)
            self._next_poll[sub.id] = now + get_settings().message_batch_poll_interval_s
            return
        if now < self._next_poll.get(sub.id, 0.0) or sub.remote_id is None:
            return
        self._next_poll[sub.id] = now + get_settings().message_batch_poll_interval_s
        remote = await self._call("retrieve", _remote_retrieve, sub.remote_id)
        await self._db(_update_state, self.engine, sub.id, remote)
        if remote.processing_status == "ended":
            self._next_poll.pop(sub.id, None)
            await self._collect(replace(sub, state="ended"))

    # ---- submitting ----------------------------------------------------------------------------------------
    async def _submit_pending(self) -> None:
        """Submit the pending items in remote batches as large as the limits (and the budget) allow."""
        s = get_settings()
        while not self.stopped():
            fits = await self._db(room, self.engine, self.batch_id)
            limit = s.message_batch_max_requests if fits is None else min(fits.items, s.message_batch_max_requests)
            if fits is not None and limit <= 0:
                if fits.pending:
                    await self._db(checkpoints.pause_for_budget, self.engine, self.batch_id,
                                   budget_pause_reason(fits.spent_usd, fits.budget_usd))
                return
            items = await self._db(_pending_items, self.engine, self.batch_id, limit)
            if not items:
                return
            body = RequestsBody()
            ids: list[int] = []
            for position, item in enumerate(items):
                if position % 200 == 199:
                    await asyncio.sleep(0)  # a long build must not hold up the heartbeat that keeps the lease
                try:
                    request = await _encoded_request(self.client, self.batch_id, int(item.item_index),
                                                     dict(item.params))
                except ValidationError as err:  # e.g. its template was removed: this item cannot be asked
                    await self._db(self._fail_unbuildable, int(item.id), err)
                    continue
                if body.size_with(request) > s.message_batch_max_bytes and body:
                    break
                body.add(int(item.item_index), request)
                ids.append(int(item.id))
            if not body:
                continue
            submission_id = str(uuid.uuid4())
            indexes = await self._db(_record_submission, self.engine, self.batch_id, submission_id, ids, body.size)
            if not indexes:
                return  # paused or cancelled meanwhile, or the items were taken
            if indexes != body.indexes:
                body = body.only(set(indexes))
            await self._create(submission_id, body)

    def _fail_unbuildable(self, item_id: int, err: AppError) -> None:
        def _write() -> None:
            with write_tx(self.engine) as conn:
                conn.execute(batch_items.update().where(batch_items.c.id == item_id, batch_items.c.status == "pending")
                             .values(status="failed", last_error=err.user_message or err.message,
                                     last_error_code=err.code, updated_at=utcnow()))

        run_db(_write)

    async def _create(self, submission_id: str, body: RequestsBody) -> None:
        """create, then the remote id on the row; a refusal puts the items back, a lost answer is reconciled."""
        try:
            remote = await self._call("create", _remote_create, body, retry=False)
        except AppError as err:
            status = err.status_code or 0
            refused = 400 <= status < 500 and status not in (408, 409, 429)
            if not refused:
                # it may have been created (or be in the making): looked for a poll interval later, before
                # anything is submitted again
                self._next_poll[submission_id] = (asyncio.get_running_loop().time()
                                                  + get_settings().message_batch_poll_interval_s)
                await self._db(_note, self.engine, submission_id, f"create: {err.message}")
                raise
            from core.batches.worker import is_batch_fatal

            fatal = is_batch_fatal(err)
            await self._db(_finish_submission, self.engine, self.batch_id, submission_id, "failed",
                           redact_cut(f"the remote batch was refused: {err.message}", 500), err.code,
                           count_attempt=not fatal)
            raise
        self.submitted += 1
        await self._db(_store_remote, self.engine, submission_id, remote)
        self._next_poll[submission_id] = 0.0  # its first retrieve at the next round

    async def _reconcile(self, sub: Submission, status: str | None) -> None:
        """A row without a remote id: match it to the remote batch made for it, or submit its items again."""
        cutoff = sub.created_at - timedelta(seconds=get_settings().message_batch_match_skew_s)
        candidates: list[Any] = []
        async for remote in self._sdk().messages.batches.list(limit=100):
            if remote.created_at < cutoff:
                break
            if sum(_counts_of(remote).values()) == sub.request_count:
                candidates.append(remote)
        known = await self._db(_known_remote_ids, self.engine, [c.id for c in candidates])
        candidates = [c for c in candidates if c.id not in known]
        wanted = {custom_id(self.batch_id, i) for i in sub.item_indexes}
        unended = False
        for remote in candidates:
            if remote.processing_status != "ended":
                unended = True
                continue
            found = {line.custom_id async for line in await self._call("results", _remote_results, remote.id)}
            if found == wanted:
                await self._db(_store_remote, self.engine, sub.id, remote)
                await self._collect(replace(sub, remote_id=remote.id, state="ended"))
                return
        if unended:
            await self._db(_note, self.engine, sub.id, "waiting for a remote batch that may be this one to end")
            return
        if status != "running":  # never created, and no new submission now: its items go back
            await self._db(_finish_submission, self.engine, self.batch_id, sub.id, "failed",
                           f"not submitted: the batch is {status}", ErrorCode.BATCH_REQUEST_MISSING,
                           count_attempt=False)
            return
        items = await self._db(_items_of, self.engine, self.batch_id, sub.item_indexes)
        body = RequestsBody()
        for i in sub.item_indexes:
            if i in items and items[i].submission_id == sub.id:
                body.add(i, await _encoded_request(self.client, self.batch_id, i, dict(items[i].params)))
        if not body:
            await self._db(_finish_submission, self.engine, self.batch_id, sub.id, "collected", "",
                           ErrorCode.BATCH_REQUEST_MISSING, count_attempt=False)
            return
        await self._create(sub.id, body)

    # ---- collecting ----------------------------------------------------------------------------------------
    async def _collect(self, sub: Submission) -> None:
        """Stream an ended remote batch's results, commit them in chunks, then settle what had no result."""
        assert sub.remote_id is not None
        chunk_size = get_settings().message_batch_results_chunk
        position, chunk = 0, []
        lines = await self._call("results", _remote_results, sub.remote_id)
        try:
            async for line in lines:
                chunk.append(line)
                if len(chunk) >= chunk_size:
                    position += len(chunk)
                    await self._commit_chunk(sub, chunk, position)
                    chunk = []
                    if self.stopped():
                        return
        finally:
            await lines.close()  # a stream left part-read (stopped, or a commit failed) frees its connection
        if chunk:
            position += len(chunk)
            await self._commit_chunk(sub, chunk, position)
        await self._db(
            _finish_submission, self.engine, self.batch_id, sub.id, "collected",
            "the remote batch returned no result for this request", ErrorCode.BATCH_REQUEST_MISSING,
            count_attempt=True)

    async def _commit_chunk(self, sub: Submission, lines: list[Any], position: int) -> None:
        assert sub.remote_id is not None
        start = position - len(lines)
        wanted = set(sub.item_indexes)
        parsed = [(line, _index_of(self.batch_id, str(line.custom_id))) for line in lines]
        items = await self._db(_items_of, self.engine, self.batch_id,
                               [i for _, i in parsed if i is not None and i in wanted])
        failures: list[_Failure] = []
        for offset, (line, index) in enumerate(parsed):
            item = items.get(index) if index is not None else None
            if item is None or item.submission_id != sub.id:
                continue  # not this submission's, or settled before (a replay of a chunk already saved)
            if start + offset < sub.results_done and item.status not in ("running", "skipped"):
                continue
            outcome = await self._outcome(sub.remote_id, line, item)
            if outcome is not None:
                failures.append(outcome)
        await self._db(_settle_chunk, self.engine, self.batch_id, sub.id, failures, position)

    async def _outcome(self, remote_id: str, line: Any, item: Any) -> _Failure | None:
        """Commit a succeeded result; the failure to settle otherwise."""
        result = line.result
        kind = getattr(result, "type", "")
        index = int(item.item_index)
        if kind == "succeeded":
            request = await _item_request(self.client, dict(item.params))
            llm = _reply_of(result.message, getattr(self.client, "provider", "sandbox"), request)
            try:
                parsed = parse_reply(GenerationParams(**dict(item.params)), request, llm, operation_id=self.batch_id)
            except GenerationError as err:
                return _Failure(index, err.code, err.message, True, llm.usage, llm.cost_usd)
            claimed = ClaimedItem(int(item.id), self.batch_id, index, dict(item.params), int(item.attempts))
            conversation_id = _conversation_id(remote_id, line.custom_id)
            judgement = None
            if item.status != "done":  # a result committed before a kill is not judged again
                judgement = await self.judge(index, claimed.params, [
                    {"role": t.role, "content": t.content} for t in parsed.conversation.turns])
            if await self._db(checkpoints.commit_item, self.engine, claimed, parsed,
                              conversation_id=conversation_id, judgement=judgement):
                self.committed += 1
            return None
        if kind == "errored":
            error_type, message = _error_of(result)
            return _Failure(index, ErrorCode.BATCH_REQUEST_ERRORED, redact_cut(f"{error_type}: {message}", 500),
                            error_type in RETRYABLE_ERROR_TYPES)
        if kind == "expired":
            return _Failure(index, ErrorCode.BATCH_REQUEST_EXPIRED,
                            "the remote batch expired before this request was processed", True)
        return _Failure(index, ErrorCode.BATCH_REQUEST_CANCELED, "the request was canceled in its remote batch", True)
