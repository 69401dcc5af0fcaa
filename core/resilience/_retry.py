"""Retry policies built from tenacity's pieces, plus our own wait strategy.

One policy owns retrying (the SDK's own retries are off), so every attempt is counted and
visible. What is retried: AppErrors that are recoverable (408, 409, 429, 5xx, 529,
connection and timeout errors, as `core.errors.classify` decides), never a spend-limit 429
and never an open circuit (the caller decides to pause when a breaker is open).

Waits are full-jitter exponential backoff, but never shorter than the `retry-after` the
service asked for (capped by settings.retry_after_cap_s). With settings.retry_instant every
wait is zero, so unit tests do not sleep; settings.retry_after_when_instant (or the
`honour_retry_after_when_instant` argument) keeps the retry-after part real in that mode so
an integration test can measure a server-imposed wait.

One policy per job: `async_retry_policy` for a model call (the model path is async),
`db_retry_policy` for `run_db` (the store is sync SQLAlchemy), `async_store_outage_policy`
for a write that must outlast an outage of the store.

Settings are read when a wait or a stop is computed, not when the policy is built, so a
settings change applies to the next attempt without a restart.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import tenacity
from tenacity import RetryCallState, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from core.config import Settings, get_settings
from core.errors import DatabaseError, ErrorCode, ErrorType, classify

__all__ = [
    "NEVER_RETRY_CODES",
    "async_retry_policy",
    "async_store_outage_policy",
    "db_retry_policy",
    "full_jitter_backoff",
    "is_retryable",
    "is_store_unavailable",
    "retry_after_of",
    "stop_after_configured_attempts",
    "wait_backoff_or_retry_after",
]

# codes that stay final even when a status would otherwise be retried
NEVER_RETRY_CODES = frozenset({ErrorCode.SPEND_LIMIT, ErrorCode.CIRCUIT_OPEN})

PolicyKind = Literal["api", "db"]


def _recoverable(exc: BaseException) -> bool:
    return bool(classify(exc).is_recoverable)


def _not_final(exc: BaseException) -> bool:
    return classify(exc).code not in NEVER_RETRY_CODES


def _from_the_store(exc: BaseException) -> bool:
    return isinstance(classify(exc), DatabaseError)


# the retry conditions, as tenacity pieces: exceptions are classified first (classify returns
# an AppError unchanged), so SDK, SQLAlchemy and OS errors are judged the same way
RETRY_TRANSIENT = retry_if_exception(_recoverable) & retry_if_exception(_not_final)
RETRY_TRANSIENT_DB = RETRY_TRANSIENT & retry_if_exception(_from_the_store)


def is_retryable(exc: BaseException) -> bool:
    """True for a recoverable error worth another attempt now (never spend limit or an open circuit)."""
    return _recoverable(exc) and _not_final(exc)


def is_store_unavailable(exc: BaseException) -> bool:
    """True while the store cannot take a write: a transient database error, or the database breaker open."""
    if not isinstance(exc, Exception):
        return False  # cancellation and interrupts are never waited out
    err = classify(exc)
    # an open "database" breaker is a CircuitOpenError with error_type "database", not a DatabaseError
    return err.error_type == ErrorType.DATABASE and err.is_recoverable


def full_jitter_backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """A wait drawn uniformly from [0, min(cap, base * 2**(attempt-1))] ("full jitter")."""
    exponent = max(attempt - 1, 0)
    # 2**exponent overflows a float past ~1023; by then the cap has long applied
    ceiling = cap if exponent >= 63 else min(cap, base * (2**exponent))
    return rand() * max(ceiling, 0.0)


def retry_after_of(exc: BaseException | None, settings: Settings | None = None) -> float | None:
    """The wait the service asked for (retry-after / retry-after-ms), capped by settings.retry_after_cap_s."""
    if exc is None:
        return None
    value = classify(exc).retry_after_s
    if value is None:
        return None
    cap = (settings or get_settings()).retry_after_cap_s
    return min(max(float(value), 0.0), cap)


def _backoff_numbers(kind: PolicyKind, s: Settings) -> tuple[float, float]:
    if kind == "db":
        return s.db_retry_backoff_base_s, s.db_retry_backoff_cap_s
    return s.retry_backoff_base_s, s.retry_backoff_cap_s


class wait_backoff_or_retry_after(wait_base):  # noqa: N801 - tenacity's naming for strategies
    """Full-jitter exponential backoff, raised to at least the error's retry-after."""

    def __init__(
        self,
        kind: PolicyKind = "api",
        *,
        honour_retry_after_when_instant: bool | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.kind = kind
        self.honour_retry_after_when_instant = honour_retry_after_when_instant
        self.rand = rand

    def __call__(self, retry_state: RetryCallState) -> float:
        s = get_settings()
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = retry_after_of(exc, s) or 0.0
        if s.retry_instant:
            honour = (s.retry_after_when_instant if self.honour_retry_after_when_instant is None
                      else self.honour_retry_after_when_instant)
            return retry_after if honour else 0.0
        base, cap = _backoff_numbers(self.kind, s)
        return max(full_jitter_backoff(retry_state.attempt_number, base, cap, self.rand), retry_after)


class stop_after_configured_attempts(stop_base):  # noqa: N801 - tenacity's naming for strategies
    """Stop after `max_attempts` attempts, or the configured number read at each check."""

    def __init__(self, kind: PolicyKind = "api", max_attempts: int | None = None) -> None:
        self.kind = kind
        self.max_attempts = max_attempts

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.max_attempts is not None:
            limit = self.max_attempts
        else:
            s = get_settings()
            limit = s.db_retry_max_attempts if self.kind == "db" else s.retry_max_attempts
        return retry_state.attempt_number >= limit


def _policy_kwargs(
    kind: PolicyKind,
    max_attempts: int | None,
    on_retry: Callable[[RetryCallState], Any] | None,
    reraise: bool,
    honour_retry_after_when_instant: bool | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retry": RETRY_TRANSIENT_DB if kind == "db" else RETRY_TRANSIENT,
        "stop": stop_after_configured_attempts(kind, max_attempts),
        "wait": wait_backoff_or_retry_after(kind, honour_retry_after_when_instant=honour_retry_after_when_instant),
        "reraise": reraise,
    }
    if on_retry is not None:
        kwargs["before_sleep"] = on_retry
    return kwargs


def async_retry_policy(
    *,
    max_attempts: int | None = None,
    on_retry: Callable[[RetryCallState], Any] | None = None,
    reraise: bool = True,
    honour_retry_after_when_instant: bool | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tenacity.AsyncRetrying:
    """A tenacity.AsyncRetrying for one model call: retry recoverable AppErrors with backoff and retry-after.

    `on_retry(retry_state)` runs before each sleep (a failed attempt that will be retried).
    With reraise=True the last error is raised as is, not wrapped in tenacity.RetryError.
    Waits are awaited with `sleep` (asyncio.sleep by default).
    """
    kwargs = _policy_kwargs("api", max_attempts, on_retry, reraise, honour_retry_after_when_instant)
    if sleep is not None:
        kwargs["sleep"] = sleep
    return tenacity.AsyncRetrying(**kwargs)


def db_retry_policy(*, on_retry: Callable[[RetryCallState], Any] | None = None) -> tenacity.Retrying:
    """The policy of `run_db`, sync because the store is: transient DatabaseErrors, the db_retry_* numbers."""
    return tenacity.Retrying(**_policy_kwargs("db", None, on_retry, True, None))


def async_store_outage_policy(
    *,
    stopped: Callable[[], bool],
    sleep: Callable[[float], Awaitable[None]],
    on_retry: Callable[[RetryCallState], Any] | None = None,
) -> tenacity.AsyncRetrying:
    """Retry a store write for as long as the store is unavailable, with no attempt limit.

    For a write that has already been through `run_db` (its own transient-error retries) and
    whose outcome must not be dropped. It stops on success, on an error that is not a store
    outage (raised as is), or when `stopped()` is true after a failed attempt (the last error
    raised). Waits are the db_retry_* backoff, never shorter than the retry-after of an open
    database breaker; that part stays real with settings.retry_instant, so a waiting write
    does not spin against an open breaker. `sleep` may return early (a worker stopping):
    the write is then tried once more before `stopped()` is asked again.
    """
    kwargs: dict[str, Any] = {
        "retry": retry_if_exception(is_store_unavailable),
        "stop": lambda _state: stopped(),
        "wait": wait_backoff_or_retry_after("db", honour_retry_after_when_instant=True),
        "reraise": True,
        "sleep": sleep,
    }
    if on_retry is not None:
        kwargs["before_sleep"] = on_retry
    return tenacity.AsyncRetrying(**kwargs)
