"""The recorder: `record()` costs the caller microseconds and never raises; a writer thread does the rest.

Caller side (cheap): classify, sample debug/info, stamp an id and a time, append to a queue.
Writer side (a daemon thread): redact and shape rows (core.errorlog.rows), keep the last few in
a ring for the UI, insert them in batches into the configured database, and spool them to disk
while the database is unavailable, replaying the spool once it is back.

    record(exc) --> [high | low queue] --> writer --> rows --> ring
                                                        \\--> store (batched)  --fails--> spool file
                                                                   ^------ replay -------/
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.auth.actor import known_actor, set_actor, system_actor
from core.config import get_settings
from core.errorlog.rows import Pending, build_row, fallback_row
from core.errorlog.sink import insert_rows
from core.errorlog.spool import Spool
from core.errors import AppError, ErrorCode, UIError, classify
from core.store import get_engine

__all__ = ["Flushed", "Recorder", "flush", "get_recorder", "new_error_id", "recent", "record", "recorder_stats", "reset_recorder", "shutdown"]

log = logging.getLogger(__name__)

_SEVERITIES = frozenset({"debug", "info", "warn", "error", "critical"})
_LOW = frozenset({"debug", "info"})
# How long reset_recorder() waits for a writer to stop before leaving it behind (it is a daemon
# working on its own, discarded state, so it cannot touch the next test's recorder).
_STOP_JOIN_S = 2.0


def _owner_id() -> str | None:
    """Whose action this error belongs to: the acting person, or the person the system acts for."""
    actor = known_actor()
    return None if actor is None else actor.owner_id


def new_error_id(unix_ms: int | None = None, random80: int | None = None) -> str:
    """A UUIDv7 as 32 hex digits: the time (ms, default now) first, then 74 random bits.

    Time-ordered ids keep the unique index on error_id append-mostly: a random uuid4 lands
    on a random leaf page, so at a million rows every insert dirtied (and wrote to the WAL,
    and checkpointed) a page of its own. Cheaper than uuid.uuid4() for the caller, too.
    The seeder passes its rows' times and its own random bits, so its ids look the same.
    """
    rand = int.from_bytes(os.urandom(10)) if random80 is None else random80
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    value = ms << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
    return f"{value | rand & 0x3FFF_FFFF_FFFF_FFFF:032x}"


@dataclass(frozen=True)
class Flushed:
    """What flush() found: everything recorded before it is stored (truthy), and rows lost since the last flush.

    A lost row could be neither inserted nor appended to the spool file (the store down and the
    data dir not writable): it exists nowhere any more. Rows still in the spool are not lost.
    """

    stored: bool
    lost: int = 0

    def __bool__(self) -> bool:
        return self.stored


class Recorder:
    """One queue, one writer thread, one ring, one spool. Use the module functions."""

    def __init__(self) -> None:
        settings = get_settings()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._high: deque[Pending] = deque()  # warn, error, critical
        self._low: deque[Pending] = deque()  # debug, info: dropped first when full
        self._ring: deque[dict[str, Any]] = deque(maxlen=settings.log_ring_size)
        self._thread: threading.Thread | None = None
        self._seq = 0  # last sequence number handed out
        self._done_seq = 0  # every item up to here is written, spooled or lost
        self._probe_requests = 0  # flush() asks the writer to try the store (and the spool) now
        self._probe_served = 0
        self._store_down_until = 0.0  # monotonic; while in the future, rows go straight to the spool
        self._spool_pending = False  # the first cycle looks for spool files left by earlier runs
        self._in_hand = 0  # rows drained by the running cycle and not yet written, spooled or counted lost
        self._lost_reported = 0  # stats["lost"] when the last flush() returned
        self._next_spool_check = 0.0
        self.busy_s = 0.0  # time spent in write cycles (not lingering or idle), for the benchmark
        self.stats = {"written": 0, "spooled": 0, "replayed": 0, "dropped": 0, "sampled_out": 0,
                      "lost": 0, "rejected": 0, "failed_records": 0}

    # ---- caller side -------------------------------------------------------------------------
    def record(
        self,
        error: Any,
        *,
        component: str,
        context: dict[str, Any] | None,
        request_id: str | None,
        operation_id: str | None,
        attempt: int | None,
        user_id: str | None,
        session_id: str | None,
        severity: str | None,
        recovered: bool,
    ) -> str | None:
        settings = get_settings()
        if isinstance(error, AppError):
            err = error
        elif isinstance(error, BaseException):
            err = classify(error)
        else:
            err = UIError("record() was given something that is not an exception", code=ErrorCode.NOT_AN_EXCEPTION)
        # str(): a Severity member is stored as its plain value
        sev = str(severity) if isinstance(severity, str) and severity in _SEVERITIES else str(err.severity)
        if sev not in _SEVERITIES:
            sev = "error"
        if sev in _LOW:
            rate = settings.log_sample_rate_debug if sev == "debug" else settings.log_sample_rate_info
            if rate < 1.0 and random.random() >= rate:  # noqa: S311 - sampling, not security
                with self._lock:
                    self.stats["sampled_out"] += 1
                return None
        error_id = new_error_id()
        if err is error and err.error_id is None:
            err.error_id = error_id  # later layers see it is logged and do not log it again
        # a shallow copy: the caller may reuse its dict after we return
        ctx = dict(context) if isinstance(context, dict) else ({"context": context} if context is not None else None)
        with self._lock:
            size = len(self._high) + len(self._low)
            if size >= settings.log_queue_max:
                if sev in _LOW or not self._low:
                    self.stats["dropped"] += 1
                    return None
                self._low.popleft()  # make room for a warning or worse
                self.stats["dropped"] += 1
            self._seq += 1
            item = Pending(
                self._seq, error_id, datetime.now(UTC), err, error, component, ctx,
                request_id if request_id is not None else err.request_id, operation_id, attempt,
                user_id if user_id is not None else _owner_id(), session_id, sev, recovered,
                settings.environment,
            )
            (self._low if sev in _LOW else self._high).append(item)
            if self._thread is None:
                self._start_locked()
        if size + 1 >= settings.log_writer_batch_size:
            self._wake.set()
        return error_id

    # ---- control ---------------------------------------------------------------------------
    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name="errorlog-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout: float) -> Flushed:
        """Wait until everything recorded so far is in the store; falsy on timeout or if still spooled.

        `.lost` counts the rows lost (neither stored nor spooled) since the previous flush().
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._thread is None:
                self._start_locked()
            target = self._seq
            self._probe_requests += 1
            request = self._probe_requests
            self._wake.set()
            stored = True
            while self._done_seq < target or self._probe_served < request:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not (self._thread and self._thread.is_alive()):
                    stored = False
                    break
                self._cond.wait(remaining)
            lost = self.stats["lost"] - self._lost_reported
            self._lost_reported = self.stats["lost"]
            return Flushed(stored=stored and not self._spool_pending and not lost, lost=lost)

    def stop(self, *, flush_timeout: float | None = None, discard: bool = False) -> None:
        """Stop the writer: after flushing if `flush_timeout` is given; dropping the queue if `discard`."""
        if flush_timeout is not None and self._thread is not None:
            self.flush(flush_timeout)
        if discard:
            with self._lock:
                self._high.clear()
                self._low.clear()
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_STOP_JOIN_S if flush_timeout is None else max(flush_timeout, _STOP_JOIN_S))

    def recent(self, n: int) -> list[dict[str, Any]]:
        rows = list(self._ring)
        rows.reverse()
        return [dict(row) for row in rows[: max(n, 0)]]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            queued = len(self._high) + len(self._low)
            return {
                "queued": queued,
                **self.stats,
                "spool_pending": self._spool_pending,
                "store_ok": self._store_down_until <= time.monotonic(),
                "writer_alive": bool(self._thread and self._thread.is_alive()),
                "busy_s": round(self.busy_s, 6),
            }

    # ---- writer side -----------------------------------------------------------------------
    def _run(self) -> None:
        # the writer stores every person's rows: it runs as the system (the rows carry their user_id)
        set_actor(system_actor())
        while True:
            interval = get_settings().log_writer_interval_s
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self._linger()
                self._cycle()
            except Exception:  # noqa: BLE001 - the writer must outlive any single failure
                # _cycle handles store and disk errors itself; reaching here is a bug, so make it
                # visible in the process log, count the rows it held as lost, and keep serving the queue
                log.exception("error log writer cycle failed")
                with self._lock:
                    self.stats["lost"] += self._in_hand
                    self._in_hand = 0
                self._settle_all_drained()
            if self._stop.is_set():
                with self._lock:
                    if not self._high and not self._low:
                        return

    def _linger(self) -> None:
        """Wait, without the GIL, while record() calls are still arriving (settings.log_writer_linger_ms).

        Shaping rows is Python work that holds the GIL, so a writer that starts in the middle of
        a burst makes every recording thread wait for it. It starts when no call came for one
        gap, when flush() or stop() asks, at half of log_queue_max, or after
        log_writer_max_linger_s, so rows are never held back for long and the queue never fills.
        """
        settings = get_settings()
        gap = settings.log_writer_linger_ms / 1000.0
        if gap <= 0:
            return
        deadline = time.monotonic() + settings.log_writer_max_linger_s
        high_water = max(1, settings.log_queue_max // 2)
        while True:
            with self._lock:
                seq = self._seq
                urgent = (self._probe_requests > self._probe_served
                          or len(self._high) + len(self._low) >= high_water)
            if urgent or self._stop.is_set() or time.monotonic() + gap > deadline:
                return
            time.sleep(gap)
            with self._lock:
                if self._seq == seq:  # nothing new during the gap: the burst is over
                    return

    def _drain(self) -> tuple[list[Pending], int]:
        with self._lock:
            both = bool(self._high) and bool(self._low)
            items = list(self._high) + list(self._low)
            self._high.clear()
            self._low.clear()
            request = self._probe_requests
            self._in_hand = len(items)
        if both:  # each queue is already in order; only interleaving them needs a sort
            items.sort(key=lambda p: p.seq)
        return items, request

    def _cycle(self) -> None:
        started = time.perf_counter()
        items, request = self._drain()
        probe = request > self._probe_served
        settings = get_settings()
        rows = []
        for p in items:
            try:
                rows.append(build_row(p, text_limit=settings.log_text_max_chars,
                                      context_limit=settings.log_context_max_chars))
            except Exception as exc:  # noqa: BLE001 - a bad argument costs its detail, never the row
                rows.append(fallback_row(p, exc))
        self._ring.extend(rows)
        spool = Spool(settings.data_dir)
        now = time.monotonic()
        if rows:
            if self._store_down_until > now and not probe:
                self._to_spool(spool, rows)
            else:
                try:
                    per_tx = max(settings.log_writer_batch_size, settings.log_writer_max_batch_rows)
                    insert_rows(get_engine(), rows, per_tx)
                    self.stats["written"] += len(rows)
                    self._store_up()
                except Exception as exc:  # noqa: BLE001 - any store failure means: keep the rows on disk
                    self._store_down(exc, settings.log_spool_retry_s)
                    self._to_spool(spool, rows)
        if now >= self._next_spool_check:
            # another process sharing the data dir may have spooled rows
            self._spool_pending = self._spool_pending or spool.has_pending()
            self._next_spool_check = now + settings.log_spool_retry_s
        if self._spool_pending and (probe or self._store_down_until <= time.monotonic()):
            self._replay(spool, settings.log_writer_batch_size, settings.log_spool_retry_s)
        self.busy_s += time.perf_counter() - started  # before flush() can see this cycle's rows
        with self._cond:
            self._in_hand = 0
            if items:
                self._done_seq = max(self._done_seq, items[-1].seq)
            self._probe_served = max(self._probe_served, request)
            self._cond.notify_all()

    def _settle_all_drained(self) -> None:
        with self._cond:
            self._done_seq = self._seq
            self._probe_served = self._probe_requests
            self._cond.notify_all()

    def _to_spool(self, spool: Spool, rows: list[dict[str, Any]]) -> None:
        try:
            spool.append(rows)
        except (OSError, TypeError, ValueError) as exc:  # no room, no permission, or a row JSON cannot hold
            with self._lock:
                self.stats["lost"] += len(rows)
            log.error("error log: %d rows lost, the spool file cannot be written (%s)", len(rows),
                      type(exc).__name__)
            return
        self.stats["spooled"] += len(rows)
        self._spool_pending = True

    def _replay(self, spool: Spool, batch_size: int, retry_s: float) -> None:
        try:
            claimed = spool.claim()
        except OSError as exc:
            log.warning("error log: spool cannot be claimed (%s)", type(exc).__name__)
            return
        for path in claimed:
            try:
                rows, bad = spool.read(path)
            except OSError as exc:
                log.warning("error log: spool file cannot be read (%s)", type(exc).__name__)
                return
            try:
                insert_rows(get_engine(), rows, batch_size, replay=True)
            except Exception as exc:  # noqa: BLE001 - store still down: keep the file for the next try
                self._store_down(exc, retry_s)
                return
            spool.done(path)
            self.stats["replayed"] += len(rows)
            self.stats["rejected"] += bad
            self._store_up()
        self._spool_pending = spool.has_pending()

    def _store_down(self, exc: BaseException, retry_s: float) -> None:
        if self._store_down_until <= time.monotonic():
            err = classify(exc)
            log.warning("error log: store unavailable (%s), spooling rows to disk", err.code)
        self._store_down_until = time.monotonic() + retry_s

    def _store_up(self) -> None:
        if self._store_down_until:
            log.info("error log: store available again")
        self._store_down_until = 0.0


# ---- module API ----------------------------------------------------------------------------------
_current: Recorder | None = None
_current_lock = threading.Lock()


def get_recorder() -> Recorder:
    global _current
    rec = _current
    if rec is None:
        with _current_lock:
            if _current is None:
                _current = Recorder()
            rec = _current
    return rec


def record(
    error: BaseException,
    *,
    component: str,
    context: dict[str, Any] | None = None,
    request_id: str | None = None,
    operation_id: str | None = None,
    attempt: int | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    severity: str | None = None,
    recovered: bool = False,
) -> str | None:
    """Record `error`; return its error_id at once (None if sampled out or dropped). Never raises."""
    try:
        return get_recorder().record(
            error, component=component, context=context, request_id=request_id, operation_id=operation_id,
            attempt=attempt, user_id=user_id, session_id=session_id, severity=severity, recovered=recovered)
    except Exception:  # noqa: BLE001 - recording must never break the caller
        try:
            get_recorder().stats["failed_records"] += 1
            log.exception("error log: record() failed")
        except Exception:  # noqa: BLE001 - even logging may fail at interpreter shutdown
            return None
        return None


def flush(timeout: float = 10.0) -> Flushed:
    """Block until everything recorded so far is in the store; falsy on timeout or while spooled, `.lost` rows lost."""
    return get_recorder().flush(timeout)


def shutdown(timeout: float | None = None) -> Flushed:
    """Flush and stop the writer (a later record() starts a new one)."""
    global _current
    with _current_lock:
        rec, _current = _current, None
    if rec is None:
        return Flushed(stored=True)
    limit = get_settings().log_shutdown_timeout_s if timeout is None else timeout
    ok = rec.flush(limit) if rec._thread is not None else Flushed(stored=True)
    rec.stop()
    return ok


def recent(n: int = 50) -> list[dict[str, Any]]:
    """The last `n` recorded rows (redacted), newest first, from memory."""
    return get_recorder().recent(n)


def recorder_stats() -> dict[str, Any]:
    """Counters for the UI and benchmarks: queued, written, spooled, replayed, dropped, sampled_out, ..."""
    return get_recorder().snapshot()


def reset_recorder() -> None:
    """Drop all queued rows, the ring and counters, and stop the writer (tests call this between tests)."""
    global _current
    with _current_lock:
        rec, _current = _current, None
    if rec is not None:
        rec.stop(discard=True)


def _after_fork_in_child() -> None:
    # the parent's writer thread does not exist in the child, and its locks may be held
    global _current, _current_lock
    _current = None
    _current_lock = threading.Lock()


def _at_exit() -> None:
    if _current is not None and _current._thread is not None:
        shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
