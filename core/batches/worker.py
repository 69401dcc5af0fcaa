"""The batch worker: an asyncio runner that claims batches by lease and generates their items.

    claim a batch lease (or join a running batch) -> claim items (bounded by concurrency)
      -> generate each through the client (limiter -> breaker -> retry -> SDK)
      -> commit conversation + item status + the batch's usage in one transaction

- Heartbeat: every settings.heartbeat_interval_s the worker extends its lease and marks its
  in-flight items alive; a worker that stops heartbeating loses both after lease_duration_s.
  While a call has waited longer than settings.rate_limit_visible_wait_s for the rate limiter,
  the heartbeat also shows "waiting for rate limit: N s" on the batch (the limiter records it).
  Its own open database breaker does not stop the heartbeat (a live worker must not look
  dead because the breaker is cooling down), and a missed one is tried again at the poll interval.
- Worker deaths: an item a dead worker had in flight is a suspect; it is claimed only when
  nothing else is pending and runs alone, so a death is charged to the item that caused it
  (see core.batches.leases, "_reset_orphans", for the poison rule).
- Store outage: an item's outcome (its conversation, or its failure) that cannot be saved
  because the store is unavailable (run_db gave up on a transient error, or the database
  breaker is open) is held in memory and saved again with backoff until the store takes it.
  Its task is still working meanwhile, so the heartbeat keeps the item alive and no other
  worker takes it: a paid-for reply is not generated twice and the outage costs no attempt.
  Only when the worker is stopped first is the item left claimed (released, or requeued
  when it goes stale); the commit is idempotent, so nothing is saved twice either way.
- A rejected key, missing billing or spend limit fails the batch at once (status_reason says
  what to fix); the items still pending stay pending for a resume.
- An open "claude" breaker pauses the batch (pause_kind "breaker") without failing items;
  the worker keeps the lease, waits the cool-down and sets it running again. A batch a
  user paused stays paused.
- A batch in Message Batches mode (batch_jobs.mode) is worked by its lease holder alone, through
  core.batches.message_batches (submit, poll, collect remote batches); nobody joins it. While its
  remote batches process, it is parked until its next poll (leases.park_batch) and the worker
  works other batches; `--once` waits for parked batches rather than exit with them in flight.
- A spend cap (batch_jobs.budget_usd, core.batches.budget) cuts the items claimed to what fits; when
  none fits and none is in flight the batch pauses (pause_kind "budget") until a person resumes it.
- request_stop() (SIGTERM/SIGINT in `python -m core worker`): no new items, the lease is
  released at once, in-flight items get settings.worker_shutdown_grace_s to finish, the
  rest go back to pending.

Whom it acts as: the system (Postgres role service_role, past Row Level Security), since it works
every person's batches; while it works one batch, the system acting for that batch's owner, so
the conversations it saves carry the owner's id and the errors it records name the owner as
their user. A worker started from a person's context (the CLI, a page) still runs as the system.

Crash tests kill a worker between a reply and its commit from the outside (the test
harness wraps the model call in the worker process); nothing here knows about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth.actor import acting_as, system_actor
from core.batches import budget, checkpoints, leases, message_batches
from core.batches.judging import BatchJudge
from core.batches.leases import ClaimedBatch, ClaimedItem
from core.batches.states import (
    BREAKER_PAUSE_REASON,
    STOPPED_PREFIX,
    breaker_pause_reason,
    budget_pause_reason,
)
from core.config import get_settings
from core.errorlog import record
from core.errors import Action, AppError, ErrorCode, ErrorType, classify
from core.generation import GenerationParams
from core.recovery import apply_cleanup
from core.redact import redact_cut
from core.resilience import get_breaker, get_rate_limiter, is_store_unavailable, outlast_store_outage
from core.store import get_engine, migrate
from core.store.schema import batch_items, batch_jobs, utcnow

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["BREAKER_PAUSE_REASON", "BatchWorker", "is_batch_fatal"]

T = TypeVar("T")

# the few words a stopped batch's reason starts with ("stopped: key rejected. ...")
_STOP_CAUSES = {
    ErrorCode.AUTHENTICATION_FAILED: "key rejected",
    ErrorCode.MALFORMED_API_KEY: "key malformed",
    ErrorCode.PERMISSION_DENIED: "key not allowed this model",
    ErrorCode.BILLING_ERROR: "billing needed",
    ErrorCode.SPEND_LIMIT: "spend limit reached",
    ErrorCode.NOT_FOUND: "model not found",
}


def _record(error: BaseException, **kwargs: Any) -> None:
    record(error, component="batch_worker", **kwargs)


def _record_once(err: AppError, **kwargs: Any) -> None:
    """Record an item's final error unless the layer it came from (the client, the generator) already did."""
    if err.error_id is None:
        _record(err, **kwargs)


def is_batch_fatal(err: AppError) -> bool:
    """Errors every other item would hit too (a rejected key, billing, spend limit, unknown model)."""
    return err.error_type == ErrorType.API and not err.is_recoverable and (
        err.action == Action.FIX_SETTINGS or err.code in (ErrorCode.SPEND_LIMIT, ErrorCode.AUTHENTICATION_FAILED))


def _fatal_reason(err: AppError) -> str:
    # redacted before it is cut: a cut inside a URL password would leave a part no pattern knows
    cause = _STOP_CAUSES.get(err.code, "the model service refuses every call")
    return (f"{STOPPED_PREFIX}{cause}. {err.user_message} Then resume the batch; done items are kept. "
            f"({err.code}: {redact_cut(err.message, 300)})")


def _is_claude_circuit_open(err: AppError) -> bool:
    return err.code == ErrorCode.CIRCUIT_OPEN and getattr(err, "service", err.context.get("service")) != "database"


@dataclass
class WorkerStats:
    worker_id: str
    started_at: float = field(default_factory=time.time)
    items_done: int = 0
    items_failed: int = 0
    replies: int = 0
    outcomes_held: int = 0  # item outcomes the store could not take at once, kept and saved later
    batches_claimed: int = 0
    last_cleanup: dict[str, int] | None = None
    current_batch: str | None = None
    last_error: str | None = None
    state: str = "starting"  # starting | idle | working | paused_by_breaker | stopping | stopped


class BatchWorker:
    """Claims batches by lease and works their items with bounded concurrency."""

    def __init__(self, engine: Engine | None = None, *, concurrency: int | None = None,
                 worker_id: str | None = None, client: Any = None) -> None:
        self.engine = engine or get_engine()
        self.concurrency = concurrency  # None: each batch's own setting, capped by settings.worker_concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.client = client
        self.stats = WorkerStats(self.worker_id)
        self._stop: asyncio.Event | None = None
        self._stop_requested = False  # a stop asked for before run() made its event
        self._last_cleanup = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- control ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop taking items; safe to call from a signal handler or another thread."""
        self.stats.state = "stopping"
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            # the loop may close between the check and the call: then the worker has already stopped
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    @property
    def stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def run(self, *, once: bool = False) -> int:
        """Work until stopped (or, with once=True, until nothing is left to claim). Returns an exit code."""
        with acting_as(system_actor()):  # threads started from here (asyncio.to_thread) carry it too
            return await self._run(once=once)

    async def _run(self, *, once: bool) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        await asyncio.to_thread(migrate, self.engine)
        # the model client's imports take seconds on a loaded machine: here, in a thread, not in
        # the event loop at the first item, where they would hold up the heartbeat of claimed items
        await asyncio.to_thread(_preload_model_client)
        settings = get_settings()
        try:
            while not self.stopping:
                await self._maybe_cleanup()
                try:
                    claimed = await asyncio.to_thread(leases.claim_batch, self.engine, self.worker_id)
                    joinable = None if claimed is not None else await asyncio.to_thread(
                        leases.find_joinable_batch, self.engine, self.worker_id)
                except Exception as exc:  # noqa: BLE001 - the store is down: record, wait, try again
                    self._store_trouble(exc, None, "claim_batch")
                    await self._sleep(settings.worker_poll_interval_s)
                    continue
                if claimed is not None:
                    self.stats.batches_claimed += 1
                work = claimed or joinable
                if work is not None:
                    # for the batch's owner: what it saves and records is theirs
                    with acting_as(system_actor(on_behalf_of=work.owner_id)):
                        try:
                            await self._work(work.batch_id, owner=claimed is not None,
                                             batch_concurrency=work.concurrency, claimed=claimed)
                        except Exception as exc:  # noqa: BLE001 - e.g. the store went away mid-batch: the lease
                            # expires, items go stale and return to pending; this worker tries again shortly
                            self._store_trouble(exc, work.batch_id, "work_batch")
                            await self._sleep(settings.worker_poll_interval_s)
                    continue
                if once and not await self._wait_for_parked():
                    break
                if once:
                    continue
                self.stats.state = "idle"
                await self._sleep(settings.worker_poll_interval_s)
        finally:
            self.stats.state = "stopped"
            self.stats.current_batch = None
        return 0

    async def _wait_for_parked(self) -> bool:
        """--once with a Message Batches batch parked until its next poll: wait for it (True), or False if none is."""
        try:
            wake = await asyncio.to_thread(leases.next_parked, self.engine)
        except Exception as exc:  # noqa: BLE001 - unknown: --once ends as if none were parked
            self._store_trouble(exc, None, "next_parked")
            return False
        if wake is None:
            return False
        self.stats.state = "idle"
        await self._sleep(min(max((wake - utcnow()).total_seconds(), 0.05), get_settings().worker_poll_interval_s))
        return True

    async def _maybe_cleanup(self) -> None:
        """The cleanup job: expired drafts, old checkpoints and error logs, every cleanup_interval_s."""
        interval = get_settings().cleanup_interval_s
        if not interval or time.monotonic() - self._last_cleanup < interval:
            return
        self._last_cleanup = time.monotonic()

        try:
            removed = await asyncio.to_thread(apply_cleanup, self.engine)
        except Exception as exc:  # noqa: BLE001 - cleanup is retried next interval
            self._store_trouble(exc, None, "cleanup")
            return
        self.stats.last_cleanup = removed

    async def _sleep(self, seconds: float) -> None:
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(seconds, 0.0))

    # ---- one batch -------------------------------------------------------------------------
    def _store_trouble(self, exc: BaseException, batch_id: str | None, step: str) -> None:
        err = classify(exc)
        self.stats.last_error = err.message
        _record(err, operation_id=batch_id, context={"worker": self.worker_id, "step": step})

    async def _work(self, batch_id: str, *, owner: bool, batch_concurrency: int,
                    claimed: ClaimedBatch | None = None) -> None:
        if claimed is not None and claimed.mode == message_batches.MODE:
            await self._work_remote(claimed)
            return
        settings = get_settings()
        # the batch asks for its parallelism; this worker's bound (--concurrency or settings) caps it
        limit = max(1, min(batch_concurrency, self.concurrency or settings.worker_concurrency))
        self.stats.current_batch = batch_id
        self.stats.state = "working"
        ctx = _BatchRun(batch_id=batch_id, owner=owner, judge=BatchJudge(self.engine, batch_id, self.client))
        in_flight: dict[asyncio.Task[None], ClaimedItem] = {}
        heartbeat = asyncio.create_task(self._heartbeat(ctx, in_flight))
        stop_wait = asyncio.create_task(self._stop.wait()) if self._stop else None
        try:
            if claimed is not None and claimed.status == "paused":  # a breaker pause inherited from a dead worker
                ctx.breaker_wait_s = 0.0
                if not await self._wait_out_breaker(ctx, in_flight):
                    return
            while not self.stopping and not ctx.fatal:
                if ctx.breaker_wait_s is not None or _claude_breaker_open():
                    if ctx.breaker_wait_s is None:
                        ctx.breaker_wait_s = _breaker_retry_in()
                    if not await self._wait_out_breaker(ctx, in_flight):
                        break
                    continue
                # a half-open breaker lets one probe through: claim one item at a time until it closes
                free = (1 if _claude_breaker_half_open() else limit) - len(in_flight)
                try:
                    free = await self._within_budget(ctx, free, in_flight)
                    items = await asyncio.to_thread(self._claim, batch_id, in_flight, free)
                except Exception as exc:  # noqa: BLE001 - the store is down: in-flight items go on, claims wait
                    self._store_trouble(exc, batch_id, "claim_items")
                    items = []
                    if not in_flight:
                        await self._sleep(settings.worker_poll_interval_s)
                        continue
                for item in items:
                    task = asyncio.create_task(self._run_item(ctx, item))
                    in_flight[task] = item
                if not in_flight:
                    if await self._others_still_working(ctx):
                        await self._sleep(settings.worker_poll_interval_s)
                        continue
                    break
                waiters: set[asyncio.Task[Any]] = set(in_flight)
                if stop_wait is not None:
                    waiters.add(stop_wait)
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED,
                                             timeout=settings.worker_poll_interval_s)
                for task in done:
                    in_flight.pop(task, None)  # type: ignore[call-overload]
        finally:
            await self._wind_down(ctx, in_flight)
            heartbeat.cancel()
            if ctx.rate_wait_shown:
                await self._show_rate_limit_wait(ctx, done=True)
            if stop_wait is not None:
                stop_wait.cancel()
            self.stats.current_batch = None

    async def _work_remote(self, claimed: ClaimedBatch) -> None:
        """A Message Batches batch: submit, poll and collect its remote batches while the lease is this worker's."""
        ctx = _BatchRun(batch_id=claimed.batch_id, owner=True,
                        judge=BatchJudge(self.engine, claimed.batch_id, self.client))
        self.stats.current_batch = claimed.batch_id
        self.stats.state = "working"
        heartbeat = asyncio.create_task(self._heartbeat(ctx, {}))
        from core.llm.client import get_client

        run = message_batches.RemoteBatchRun(self.engine, claimed.batch_id, self.client or get_client(),
                                             stopped=lambda: self.stopping or not ctx.owner, sleep=self._sleep,
                                             judge=ctx.judge)
        park_s: float | None = None
        try:
            park_s = await run.run()
        except AppError as err:
            if not is_batch_fatal(err):
                raise
            ctx.fatal = True
            if await asyncio.to_thread(checkpoints.fail_batch, self.engine, ctx.batch_id, _fatal_reason(err)):
                _record_once(err, operation_id=ctx.batch_id, context={"step": "batch_failed"})
        finally:
            heartbeat.cancel()
            self.stats.current_batch = None
            self.stats.items_done += run.committed
            # its remote batches are processing: parked until their next poll, this worker moves on
            parked = park_s is not None and ctx.owner and not self.stopping and await self._park(ctx, park_s)
            if not parked:
                await self._wind_down(ctx, {})

    async def _park(self, ctx: _BatchRun, seconds: float) -> bool:
        until = utcnow() + timedelta(seconds=seconds)
        try:
            return await asyncio.to_thread(leases.park_batch, self.engine, ctx.batch_id, self.worker_id, until)
        except Exception as exc:  # noqa: BLE001 - not parked: let go of it the usual way (its lease runs out)
            self._store_trouble(exc, ctx.batch_id, "park")
            return False

    def _claim(self, batch_id: str, in_flight: dict[asyncio.Task[None], ClaimedItem], free: int) -> list[ClaimedItem]:
        """Up to `free` items; an item a dead worker had in flight only alone, once nothing else is left.

        A suspect runs alone so that, if it kills this worker too, the death is charged to it
        and not to bystanders (see leases._reset_orphans for the rule).
        """
        if any(item.lost_attempts for item in in_flight.values()):
            return []
        items = leases.claim_items(self.engine, batch_id, self.worker_id, free) if free > 0 else []
        if not items and not in_flight:
            items = leases.claim_items(self.engine, batch_id, self.worker_id, 1, suspect=True)
        return items

    async def _within_budget(self, ctx: _BatchRun, free: int, in_flight: dict[asyncio.Task[None], ClaimedItem]) -> int:
        """`free`, cut to what the batch's spend cap allows; none fit and none in flight: the batch pauses.

        A batch without a budget is asked again once a poll interval (one may be given meanwhile), not per claim.
        """
        batch_id = ctx.batch_id
        if free <= 0 or time.monotonic() < ctx.no_budget_until:
            return free
        fits = await asyncio.to_thread(budget.room, self.engine, batch_id)
        if fits is None:
            ctx.no_budget_until = time.monotonic() + get_settings().worker_poll_interval_s
            return free
        if fits.items >= free:
            return free
        if fits.items <= 0 and fits.pending and not in_flight:
            await asyncio.to_thread(checkpoints.pause_for_budget, self.engine, batch_id,
                                    budget_pause_reason(fits.spent_usd, fits.budget_usd))
        return max(fits.items, 0)

    async def _others_still_working(self, ctx: _BatchRun) -> bool:
        """True if the batch is running and items are in flight at other workers (the owner waits for them)."""
        if not ctx.owner:
            return False


        def _check() -> bool:
            with self.engine.connect() as conn:
                status = conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == ctx.batch_id)).scalar()
                if status != "running":
                    return False
                return bool(conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
                    batch_items.c.batch_id == ctx.batch_id,
                    batch_items.c.status.in_(("running", "pending")))).scalar_one())

        try:
            return await asyncio.to_thread(_check)
        except Exception as exc:  # noqa: BLE001 - unknown: let go of the batch; its lease expires or is released
            self._store_trouble(exc, ctx.batch_id, "check_batch")
            return False

    async def _wait_out_breaker(self, ctx: _BatchRun, in_flight: dict[asyncio.Task[None], ClaimedItem]) -> bool:
        """Pause the batch for the breaker's cool-down, then set it running again; False if it must be let go."""
        settings = get_settings()
        if in_flight:  # they fail fast on the open breaker and go back to pending
            await asyncio.wait(set(in_flight))
            in_flight.clear()
        if ctx.fatal or self.stopping:
            return False
        self.stats.state = "paused_by_breaker"
        wait = min(max(ctx.breaker_wait_s or 0.0, _breaker_retry_in()), settings.worker_breaker_probe_max_s)
        reason = breaker_pause_reason(utcnow() + timedelta(seconds=wait))  # the page counts down to it
        await asyncio.to_thread(checkpoints.pause_for_breaker, self.engine, ctx.batch_id, reason)
        await self._sleep(wait)
        ctx.breaker_wait_s = None
        if self.stopping:
            return False
        resumed = await asyncio.to_thread(checkpoints.resume_after_breaker, self.engine, ctx.batch_id)
        self.stats.state = "working"
        if resumed:
            return True
        # not paused by the breaker any more: a user paused or cancelled it, or a resume requeued it
        return await asyncio.to_thread(_status_of, self.engine, ctx.batch_id) == "running"

    async def _wind_down(self, ctx: _BatchRun, in_flight: dict[asyncio.Task[None], ClaimedItem]) -> None:
        try:
            await self._let_go(ctx, in_flight)
        except Exception as exc:  # noqa: BLE001 - the lease then expires and the items go stale: both recover
            self._store_trouble(exc, ctx.batch_id, "wind_down")

    async def _let_go(self, ctx: _BatchRun, in_flight: dict[asyncio.Task[None], ClaimedItem]) -> None:
        settings = get_settings()
        if self.stopping:
            # the next worker may start on this batch now, not when the lease would expire
            if ctx.owner:
                await asyncio.to_thread(leases.release_lease, self.engine, ctx.batch_id, self.worker_id)
            if in_flight:
                _, pending = await asyncio.wait(set(in_flight), timeout=settings.worker_shutdown_grace_s)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await asyncio.to_thread(leases.release_items, self.engine, self.worker_id)
            return
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        if not ctx.fatal:
            await asyncio.to_thread(checkpoints.finalize_batch, self.engine, ctx.batch_id)
        if ctx.owner:
            await asyncio.to_thread(leases.release_lease, self.engine, ctx.batch_id, self.worker_id)

    async def _heartbeat(self, ctx: _BatchRun, in_flight: dict[asyncio.Task[None], ClaimedItem]) -> None:
        settings = get_settings()
        wait = settings.heartbeat_interval_s
        while True:
            await asyncio.sleep(wait)
            # a missed heartbeat is tried again at the poll interval: the lease is running out
            wait = min(settings.heartbeat_interval_s, settings.worker_poll_interval_s)
            # only items still being worked on are kept alive (an item whose outcome is held through
            # a store outage is); one its task let go of goes stale and back to pending
            working = [item.id for task, item in in_flight.items() if not task.done()]
            try:
                kept = await asyncio.to_thread(leases.renew, self.engine, self.worker_id, ctx.batch_id,
                                               owner=ctx.owner, item_ids=working)
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is recorded; the next one retries
                _record(exc, operation_id=ctx.batch_id, context={"worker": self.worker_id, "step": "heartbeat"})
                continue
            wait = settings.heartbeat_interval_s
            if ctx.owner and not kept:
                ctx.owner = False  # another worker took over (or a resume reset the lease): keep going as a joiner
            await self._show_rate_limit_wait(ctx)

    async def _show_rate_limit_wait(self, ctx: _BatchRun, *, done: bool = False) -> None:
        """Put "waiting for rate limit: N s" on the batch while a call of this process waits that long."""
        # imported here: core.batches.service imports the package core.batches, whose __init__ imports this module
        from core.batches.service import note_rate_limit_wait

        waited = 0.0 if done else get_rate_limiter().snapshot()["longest_wait_s"]
        shown = waited if waited >= get_settings().rate_limit_visible_wait_s else None
        if shown is None and not ctx.rate_wait_shown:
            return
        try:
            await asyncio.to_thread(note_rate_limit_wait, self.engine, ctx.batch_id, shown)
        except Exception as exc:  # noqa: BLE001 - only the display of the wait is lost; the next beat retries
            _record(exc, operation_id=ctx.batch_id, context={"worker": self.worker_id, "step": "rate_limit_wait"})
            return
        ctx.rate_wait_shown = shown is not None

    # ---- one item --------------------------------------------------------------------------
    async def _run_item(self, ctx: _BatchRun, item: ClaimedItem) -> None:
        # looked up at each call, not bound at import: tests/integration/crash_hook.py replaces it
        from core.generation.service import agenerate_conversation

        try:
            params = GenerationParams(**item.params)
            # streamed: a cut answer then continues from its partial text instead of starting over
            result = await agenerate_conversation(params, client=self.client, component="batch",
                                                  operation_id=ctx.batch_id, on_delta=_ignore_delta)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified and decided on below
            await self._item_failed(ctx, item, classify(exc))
            return
        self.stats.replies += 1
        judgement = await ctx.judge(item.item_index, item.params,
                                    [{"role": t.role, "content": t.content} for t in result.conversation.turns])
        try:
            # one id for every try: a try whose acknowledgement was lost is recognised, not counted twice
            done = await self._save_outcome(ctx, item, "commit", checkpoints.commit_item, result,
                                            conversation_id=str(uuid.uuid4()), judgement=judgement)
        except Exception as exc:  # noqa: BLE001 - the reply is lost; the attempt is counted and retried

            err = classify(exc)
            if is_store_unavailable(err):  # stopped during an outage: the item is released or goes stale
                return
            _record(err, operation_id=ctx.batch_id, context={"item_index": item.item_index, "step": "commit"})
            self.stats.last_error = err.message
            await self._settle(ctx, item, err)
            return
        if done:  # not when it went back to be generated again, nor when another worker's commit was first
            self.stats.items_done += 1

    async def _save_outcome(self, ctx: _BatchRun, item: ClaimedItem, step: str,
                            save: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`save(engine, item, *args, **kwargs)`, held through a store outage until it is saved or the worker stops.

        Raises what `save` raised when the error is not an outage, or when the worker stops
        while the store is still unavailable.
        """
        def _held(state: RetryCallState) -> None:
            if state.attempt_number > 1:
                return  # one row per held outcome, not one per try
            self.stats.outcomes_held += 1
            failure = state.outcome.exception() if state.outcome is not None else None
            err = classify(failure) if failure is not None else None
            if err is not None:
                self.stats.last_error = err.message
                _record(err, operation_id=ctx.batch_id,
                        context={"item_index": item.item_index, "step": step, "outcome": "held"})

        return await outlast_store_outage(functools.partial(save, self.engine, item, *args, **kwargs),
                                          stopped=lambda: self.stopping, sleep=self._sleep, on_retry=_held)

    async def _item_failed(self, ctx: _BatchRun, item: ClaimedItem, err: AppError) -> None:
        self.stats.last_error = err.message
        if _is_claude_circuit_open(err) or (err.is_recoverable and err.error_type in (ErrorType.API, ErrorType.NETWORK)
                                            and _claude_breaker_open()):
            # the service is down, not this item: no attempt counted, the batch pauses
            ctx.breaker_wait_s = max(ctx.breaker_wait_s or 0.0, err.retry_after_s or _breaker_retry_in())
            try:
                await self._save_outcome(ctx, item, "release", _release_item, self.worker_id)
            except Exception as exc:  # noqa: BLE001 - the item stays claimed and returns to pending when stale
                _record(exc, operation_id=ctx.batch_id, context={"item_index": item.item_index, "step": "release"})
            return
        if is_batch_fatal(err):
            ctx.fatal = True
            await asyncio.to_thread(leases.release_items, self.engine, self.worker_id, [item.id])
            if await asyncio.to_thread(checkpoints.fail_batch, self.engine, ctx.batch_id, _fatal_reason(err)):
                _record_once(err, operation_id=ctx.batch_id, context={"item_index": item.item_index,
                                                                      "step": "batch_failed"})
            return
        status = await self._settle(ctx, item, err)
        if status == "failed":
            self.stats.items_failed += 1
            _record_once(err, operation_id=ctx.batch_id, attempt=item.attempts + 1,
                         context={"item_index": item.item_index, "step": "item_failed"})

    async def _settle(self, ctx: _BatchRun, item: ClaimedItem, err: AppError) -> str | None:
        try:
            return await self._save_outcome(ctx, item, "settle", checkpoints.record_item_failure, err)
        except Exception as exc:  # noqa: BLE001 - the item stays claimed and returns to pending when stale
            _record(exc, operation_id=item.batch_id, context={"item_index": item.item_index, "step": "settle"})
            return None


@dataclass
class _BatchRun:
    batch_id: str
    owner: bool
    judge: BatchJudge  # the optional LLM judge of its conversations
    fatal: bool = False
    breaker_wait_s: float | None = None  # set when the model service's breaker is open
    rate_wait_shown: bool = False  # the batch shows "waiting for rate limit: N s"
    no_budget_until: float = 0.0  # monotonic time until which the batch is taken to have no budget


def _release_item(engine: Engine, item: ClaimedItem, worker_id: str) -> int:
    return leases.release_items(engine, worker_id, [item.id])


def _preload_model_client() -> None:
    import core.generation.service
    import core.llm.client  # noqa: F401 - imported for its side effect: the SDK is loaded


def _ignore_delta(_text: str) -> None:
    """Batch items are not shown while they stream; only the finished conversation is kept."""


def _claude_breaker_open() -> bool:
    return get_breaker("claude").state == "open"


def _claude_breaker_half_open() -> bool:
    return get_breaker("claude").state == "half_open"


def _breaker_retry_in() -> float:
    snap = get_breaker("claude").snapshot()
    return float(snap.get("retry_in_s") or 0.0)


def _status_of(engine: Engine, batch_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == batch_id)).scalar()

