"""Store operations through the "database" circuit breaker and a retry policy for transient errors.

`run_db(fn, *args, **kwargs)` calls `fn(*args, **kwargs)`; if it fails with a transient
database error (connection lost, pool or statement timeout, SQLite busy/locked) it is run
again with the settings.db_retry_* backoff, up to settings.db_retry_max_attempts attempts.
Constraint violations and other non-recoverable errors are raised at once.

The contract for `fn`: it does its whole unit of work in ONE transaction, opened inside it
(`with core.store.tx.write_tx(engine) as conn: ...`). A failed attempt is then rolled back
whole by the transaction, and a retry re-runs the unit from the start, never half of it.
Do not pass a connection or transaction opened outside `fn`: after a dropped connection it
is dead, and a retry on it would fail again or, worse, apply the second half alone.

Errors leave `run_db` classified: an AppError (usually DatabaseError; check `.code`, e.g.
"duplicate_key") raised from the original exception, which stays in `__cause__`/`.cause`.
An open database breaker raises CircuitOpenError (error_type "database") without calling fn.

`run_db_past_breaker(fn, *args)` is `run_db` for the one kind of write an open breaker must
not refuse: a heartbeat. A live worker whose own breaker opened during a database restart
would otherwise miss its heartbeats for the whole cool-down, look dead to the other workers
and have its items taken over and generated twice. Its outcome is still reported to the
breaker (`record_bypass`): a success is a successful probe.

`outlast_store_outage(fn, *args, stopped=..., sleep=...)` is for outcomes that must not be
dropped when `run_db` gives up (a batch item's conversation): it calls `fn` (which uses
`run_db` itself) in a worker thread again and again while the store stays unavailable,
until it is saved, fails for good, or the caller stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import RetryCallState

from core.errorlog import record
from core.errors import classify
from core.resilience._breaker import CircuitBreaker, get_breaker
from core.resilience._retry import async_store_outage_policy, db_retry_policy

__all__ = ["DATABASE_SERVICE", "outlast_store_outage", "run_db", "run_db_past_breaker"]

DATABASE_SERVICE = "database"

T = TypeVar("T")


def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one store unit of work with the database breaker and transient-error retries."""
    return _retried_run(_attempt, fn, args, kwargs)


def run_db_past_breaker(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`run_db` without asking the database breaker first (heartbeats); the outcome still informs it."""
    return _retried_run(_attempt_past, fn, args, kwargs)


_Attempt = Callable[[CircuitBreaker, Callable[..., T], tuple[Any, ...], dict[str, Any]], T]


def _retried_run(attempt: _Attempt[T], fn: Callable[..., T], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> T:
    breaker = get_breaker(DATABASE_SERVICE)
    retried = _Retried(fn)
    result = db_retry_policy(on_retry=retried.remember)(attempt, breaker, fn, args, kwargs)
    retried.record_recovery()
    return result


def _attempt_past(breaker: CircuitBreaker, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        breaker.record_bypass(exc)
        if not isinstance(exc, Exception):
            raise
        raise classify(exc) from exc
    breaker.record_bypass(None)
    return result


class _Retried:
    """The failed attempts of one run_db call, so a success after them leaves an info row (recovered)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.failures = 0
        self.last: BaseException | None = None

    def remember(self, state: RetryCallState) -> None:
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            self.failures += 1
            self.last = outcome.exception()

    def record_recovery(self) -> None:
        if self.last is None:
            return
        # like the model client: the failures were transient and a retry won, so the log shows
        # that the database was flaky without an error anyone has to act on
        record(self.last, component="store", attempt=self.failures + 1, severity="info", recovered=True,
               context={"operation": getattr(self.fn, "__qualname__", type(self.fn).__name__),
                        "recovered_after_failures": self.failures})


async def outlast_store_outage(
    fn: Callable[..., T],
    *args: Any,
    stopped: Callable[[], bool],
    sleep: Callable[[float], Awaitable[None]],
    on_retry: Callable[[RetryCallState], Any] | None = None,
) -> T:
    """Run the store operation `fn(*args)` in a thread until the store takes it (see async_store_outage_policy).

    `fn` must be safe to repeat: an attempt whose COMMIT reached the server but whose
    acknowledgement was lost is followed by another one.
    """
    policy = async_store_outage_policy(stopped=stopped, sleep=sleep, on_retry=on_retry)
    return await policy(asyncio.to_thread, fn, *args)


def _attempt(breaker: CircuitBreaker, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    breaker.before_call()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        err = _count_and_classify(breaker, exc)
        if err is exc:
            raise
        raise err from exc
    breaker.record_success()
    return result


def _count_and_classify(breaker: CircuitBreaker, exc: BaseException) -> BaseException:
    """Count the failure on the breaker; the error to raise (cancellation passes through as is)."""
    breaker.record_failure(exc)
    if not isinstance(exc, Exception):
        return exc  # KeyboardInterrupt, CancelledError, SystemExit: never wrapped, never retried
    return classify(exc)
