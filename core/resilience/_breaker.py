"""Circuit breakers, one per service ("claude", "database"), in a process-wide registry.

CLOSED -> OPEN after settings.breaker_failure_threshold counted failures within
settings.breaker_window_s, provided they are at least settings.breaker_failure_ratio of the
calls that finished in that window (so a batch at full speed with a few percent of transient
faults keeps running, while a service that fails most calls trips at once); OPEN -> HALF_OPEN
once the cool-down has passed: settings.breaker_cooldown_s, or — when the failure that opened
it was a dropped or refused connection (`RECONNECT_CODES`), which reconnecting fixes —
settings.breaker_reconnect_cooldown_s, doubling at each re-open in a row up to
breaker_cooldown_s. A reconnect probe costs the database one connection attempt, so after
a restart the breaker finds it back within a second or two instead of waiting out 30 s;
failures that mean an overloaded or locked store (timeouts, "database is locked") keep the
full cool-down, so probes do not pile onto it;
HALF_OPEN lets settings.breaker_half_open_max_calls probe calls through at a time, closes
after settings.breaker_success_threshold probe successes and re-opens on a probe failure.
Settings are read at each transition check, so changes apply without a restart.

Why not pybreaker or purgatory: pybreaker has no native asyncio, and purgatory is
asyncio-first with a separate sync flavour. Here one small lock-based state machine serves
threads and coroutines identically, because no operation awaits (or calls out) while
holding the lock: `before_call`, `record_success` and `record_failure` are short critical
sections, so calling them from a coroutine never blocks the event loop for longer than a
dict update. State changes are written to the error log after the lock is released.

Only failures that say the service itself is unhealthy count (`counts_as_failure`):
5xx, 529, 408, timeouts, dropped connections, transient database errors. A 4xx (bad
request, auth, rate limit), a validation error or an unusable model reply does not.

`record_bypass(error)` takes the outcome of a call made without asking the breaker (one that
must not be refused: the heartbeat that keeps a live worker's lease). Its failure counts
only while the breaker is closed; its success while open or half-open is a successful probe
(the service answered), so it also brings the breaker back sooner.

`CircuitOpenError` is an AppError whose error_type follows the service: its subclass
`DatabaseCircuitOpenError` ("database") for the database breaker, `ClaudeCircuitOpenError`
("api") for claude, the base ("api") for any other service, so the error log groups it with
the failures that opened it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from core.config import get_settings
from core.errorlog import record
from core.errors import (
    Action,
    APIError,
    AppError,
    DatabaseError,
    ErrorCode,
    ErrorType,
    NetworkError,
    Severity,
    classify,
)
from core.resilience._slots import add_to_slot, expire_slots

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClaudeCircuitOpenError",
    "DatabaseCircuitOpenError",
    "all_breakers",
    "counts_as_failure",
    "get_breaker",
    "reset_breakers",
]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# services the UI always lists, even before their first call
KNOWN_SERVICES = ("claude", "database")

_SERVICE_LABEL = {"claude": "The model service", "database": "The database"}

# failures a reconnect fixes: the breaker they open probes again after the short reconnect cool-down
RECONNECT_CODES = frozenset({ErrorCode.DB_CONNECTION})
_PAUSED_WHAT = {"claude": "new calls", "database": "new saves"}

T = TypeVar("T")


class CircuitOpenError(AppError):
    """A call was refused because the service's breaker is open (or its probes are busy).

    `CircuitOpenError(service, wait)` builds the service's own subclass when it has one, so
    its error_type is a fact of its class; any other service gets this class ("api").
    """

    error_type = ErrorType.API
    default_code = ErrorCode.CIRCUIT_OPEN
    default_severity = Severity.WARN
    default_recoverable = True
    default_action = Action.RETRY

    def __new__(cls, service: str, *args: Any, **kwargs: Any) -> CircuitOpenError:
        if cls is CircuitOpenError:
            cls = _CIRCUIT_OPEN_ERRORS.get(service, cls)
        return super().__new__(cls)

    def __init__(self, service: str, retry_after_s: float, *, message: str = "") -> None:
        wait = max(int(math.ceil(retry_after_s)), 0)
        label = _SERVICE_LABEL.get(service, f"The {service} service")
        what = _PAUSED_WHAT.get(service, "new calls")
        super().__init__(
            message or f"Circuit '{service}' is open; calls refused for {retry_after_s:.1f} s",
            retry_after_s=max(retry_after_s, 0.0),
            user_message=f"{label} is failing repeatedly; {what} are paused for {wait} s.",
            context={"service": service},
        )
        self.service = service

    def __reduce__(self) -> tuple[Any, ...]:
        # worker processes hand errors back pickled; the default would call __init__(message)
        return (type(self), (self.service, self.retry_after_s or 0.0), self.__dict__)


class ClaudeCircuitOpenError(CircuitOpenError):
    """The model service's breaker refused the call."""


class DatabaseCircuitOpenError(CircuitOpenError):
    """The database's breaker refused the call; the error log groups it with the database failures."""

    error_type = ErrorType.DATABASE


_CIRCUIT_OPEN_ERRORS: dict[str, type[CircuitOpenError]] = {
    "claude": ClaudeCircuitOpenError, "database": DatabaseCircuitOpenError}


class _BreakerEvent(AppError):
    """A state change, written to the error log as an event (its code is in EVENT_CODES), not an error.

    Warn when it opens, info otherwise.
    """

    error_type = ErrorType.API
    default_recoverable = True
    default_action = Action.RETRY


class _DatabaseBreakerEvent(_BreakerEvent):
    error_type = ErrorType.DATABASE


_TRANSITION_CODES = {OPEN: ErrorCode.CIRCUIT_OPENED, HALF_OPEN: ErrorCode.CIRCUIT_HALF_OPEN,
                     CLOSED: ErrorCode.CIRCUIT_CLOSED}


def counts_as_failure(error: BaseException) -> bool:
    """True when `error` says the service itself is failing (5xx/529/408/timeout/connection/transient DB)."""
    err = classify(error)
    if isinstance(err, CircuitOpenError) or err.code in (ErrorCode.CIRCUIT_OPEN, ErrorCode.SPEND_LIMIT):
        return False
    if not err.is_recoverable:
        return False
    if isinstance(err, NetworkError | DatabaseError):
        return True
    if isinstance(err, APIError):
        status = err.status_code
        # no status: an error event mid-stream (e.g. overloaded); 429/409 are pacing, not ill health
        return status is None or status == 408 or status >= 500
    return False


class CircuitBreaker:
    """A thread- and asyncio-safe breaker for one service. `clock` is monotonic seconds."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._state = CLOSED
        # counted failures and successes in the window, as [end of a slot, count] (see _slots)
        self._failures: deque[list[float]] = deque()
        self._successes: deque[list[float]] = deque()
        self._opened_at: float | None = None
        self._opened_at_wall: float | None = None
        self._probes_in_flight = 0
        self._last_probe_at: float | None = None
        self._probe_successes = 0
        self._total_opens = 0
        self._last_failure: str | None = None
        self._reconnect_opens = 0  # opens in a row caused by a dropped connection (0: a full cool-down)
        self.history: deque[tuple[str, float]] = deque(maxlen=50)  # (new state, wall time)

    # ---- reading ----------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            events = self._advance(self._clock())
            state = self._state
        self._emit(events)
        return state

    def snapshot(self) -> dict[str, Any]:
        """name, state, failures in the window, opened_at (epoch s), retry_in_s, total_opens, ..."""
        with self._lock:
            now = self._clock()
            events = self._advance(now)
            self._prune(now)
            snap = {
                "name": self.name,
                "state": self._state,
                "failures": _count(self._failures),
                "opened_at": self._opened_at_wall if self._state != CLOSED else None,
                "retry_in_s": self._retry_in(now) if self._state == OPEN else 0.0,
                "total_opens": self._total_opens,
                "probe_successes": self._probe_successes,
                "last_failure": self._last_failure,
            }
        self._emit(events)
        return snap

    # ---- the protocol ------------------------------------------------------------------
    def before_call(self) -> None:
        """Let a call through, or raise CircuitOpenError with the remaining cool-down."""
        with self._lock:
            now = self._clock()
            events = self._advance(now)
            refusal: CircuitOpenError | None = None
            if self._state == OPEN:
                refusal = CircuitOpenError(self.name, self._retry_in(now))
            elif self._state == HALF_OPEN:
                s = get_settings()
                # a probe that never reported back (its caller died) frees its slot after a cool-down
                stale = self._last_probe_at is not None and now - self._last_probe_at >= s.breaker_cooldown_s
                if self._probes_in_flight < s.breaker_half_open_max_calls or stale:
                    if stale:
                        self._probes_in_flight = 0
                    self._probes_in_flight += 1
                    self._last_probe_at = now
                else:
                    since = now - (self._last_probe_at or now)
                    refusal = CircuitOpenError(
                        self.name, max(s.breaker_cooldown_s - since, 0.0),
                        message=f"Circuit '{self.name}' is half-open and its probe calls are in flight")
        self._emit(events)
        if refusal is not None:
            raise refusal

    def record_success(self) -> None:
        """A call that passed `before_call` succeeded."""
        with self._lock:
            now = self._clock()
            events = self._advance(now)
            if self._state == CLOSED:
                self._add(self._successes, now)
            if self._state == HALF_OPEN:
                self._probes_in_flight = max(self._probes_in_flight - 1, 0)
                self._probe_successes += 1
                if self._probe_successes >= get_settings().breaker_success_threshold:
                    events.append(self._to_closed())
        self._emit(events)

    def record_bypass(self, error: BaseException | None = None) -> None:
        """The outcome (None: success) of a call made without `before_call`; see the module docstring."""
        counted = error is not None and counts_as_failure(error)
        with self._lock:
            now = self._clock()
            events = self._advance(now)
            if error is not None:
                if self._state == CLOSED and counted:
                    self._last_failure = classify(error).code
                    events.extend(self._count_failure(now))
            elif self._state == CLOSED:
                self._add(self._successes, now)
            else:
                if self._state == OPEN:
                    events.append(self._to_half_open(reason="a call made past the open breaker succeeded"))
                self._probe_successes += 1
                if self._probe_successes >= get_settings().breaker_success_threshold:
                    events.append(self._to_closed())
        self._emit(events)

    def record_failure(self, error: BaseException) -> bool:
        """A call that passed `before_call` failed; returns whether the failure counted."""
        counted = counts_as_failure(error)
        with self._lock:
            now = self._clock()
            events = self._advance(now)
            if counted:
                self._last_failure = classify(error).code
            if self._state == HALF_OPEN:
                self._probes_in_flight = max(self._probes_in_flight - 1, 0)
                if counted:
                    events.append(self._to_open(now, reason="a probe call failed"))
            elif self._state == CLOSED and counted:
                events.extend(self._count_failure(now))
        self._emit(events)
        return counted

    def _count_failure(self, now: float) -> list[tuple[str, str]]:
        self._add(self._failures, now)
        s = get_settings()
        failures = _count(self._failures)
        ratio = failures / (failures + _count(self._successes))
        if failures >= s.breaker_failure_threshold and ratio >= s.breaker_failure_ratio:
            return [self._to_open(now, reason=f"{failures} failures ({ratio:.0%} of calls) within "
                                              f"{s.breaker_window_s:g} s")]
        return []

    @contextmanager
    def guard(self) -> Iterator[None]:
        """`with breaker.guard(): call()` - before_call, then record the outcome (also inside async code)."""
        self.before_call()
        try:
            yield
        except BaseException as exc:
            self.record_failure(exc)
            raise
        self.record_success()

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """`await fn(*args, **kwargs)` through the breaker (a sync call uses `guard()`)."""
        with self.guard():
            return await fn(*args, **kwargs)

    # ---- transitions (called with the lock held; return events to emit after release) ---
    def _advance(self, now: float) -> list[tuple[str, str]]:
        if self._state == OPEN and self._opened_at is not None:
            if now - self._opened_at >= self._cooldown():
                return [self._to_half_open(reason="cool-down elapsed; letting probe calls through")]
        return []

    def _cooldown(self) -> float:
        """This open's cool-down: the full one, or the reconnect one doubled per re-open in a row."""
        s = get_settings()
        if not self._reconnect_opens:
            return s.breaker_cooldown_s
        return min(s.breaker_cooldown_s, s.breaker_reconnect_cooldown_s * 2 ** min(self._reconnect_opens - 1, 32))

    def _to_half_open(self, *, reason: str) -> tuple[str, str]:
        self._state = HALF_OPEN
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._last_probe_at = None
        self.history.append((HALF_OPEN, self._wall_clock()))
        return (HALF_OPEN, reason)

    def _to_open(self, now: float, *, reason: str) -> tuple[str, str]:
        # the failure that opened it decides how soon to probe: see the module docstring
        self._reconnect_opens = self._reconnect_opens + 1 if self._last_failure in RECONNECT_CODES else 0
        self._state = OPEN
        self._opened_at = now
        self._opened_at_wall = self._wall_clock()
        self._total_opens += 1
        self._failures.clear()
        self._successes.clear()
        self._probes_in_flight = 0
        self._probe_successes = 0
        self.history.append((OPEN, self._opened_at_wall))
        return (OPEN, reason)

    def _to_closed(self) -> tuple[str, str]:
        self._state = CLOSED
        self._opened_at = None
        self._opened_at_wall = None
        self._failures.clear()
        self._successes.clear()
        self._probes_in_flight = 0
        self._reconnect_opens = 0
        successes, self._probe_successes = self._probe_successes, 0
        self.history.append((CLOSED, self._wall_clock()))
        return (CLOSED, f"{successes} probe calls succeeded")

    def _add(self, window: deque[list[float]], now: float) -> None:
        add_to_slot(window, now, 1.0, get_settings().resilience_window_slot_s)
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - get_settings().breaker_window_s
        for times in (self._failures, self._successes):
            expire_slots(times, horizon)

    def _retry_in(self, now: float) -> float:
        if self._opened_at is None:
            return 0.0
        return max(self._cooldown() - (now - self._opened_at), 0.0)

    # ---- error log ----------------------------------------------------------------------
    def _emit(self, events: list[tuple[str, str]]) -> None:
        for state, reason in events:
            _record_transition(self, state, reason)


def _record_transition(breaker: CircuitBreaker, state: str, reason: str) -> None:
    severity = Severity.WARN if state == OPEN else Severity.INFO
    event_type = _DatabaseBreakerEvent if breaker.name == "database" else _BreakerEvent
    event = event_type(
        f"Circuit '{breaker.name}' is now {state}: {reason}",
        code=_TRANSITION_CODES[state],
        severity=severity,
        user_message=(CircuitOpenError(breaker.name, breaker._cooldown()).user_message
                      if state == OPEN else f"{_SERVICE_LABEL.get(breaker.name, breaker.name)} is answering again."),
        context={"service": breaker.name, "state": state, "reason": reason},
    )
    record(event, component=f"breaker.{breaker.name}", severity=str(severity),
           context=event.context, recovered=state == CLOSED)


def _count(window: deque[list[float]]) -> int:
    return round(sum(amount for _, amount in window))


_registry_lock = threading.Lock()
_registry: dict[str, CircuitBreaker] = {}


def get_breaker(name: str) -> CircuitBreaker:
    """The process-wide breaker for service `name` ("claude", "database"), created on first use."""
    with _registry_lock:
        breaker = _registry.get(name)
        if breaker is None:
            breaker = _registry[name] = CircuitBreaker(name)
        return breaker


def all_breakers() -> list[dict[str, Any]]:
    """Snapshots of every breaker (the known services always included), sorted by name."""
    for name in KNOWN_SERVICES:
        get_breaker(name)
    with _registry_lock:
        breakers = sorted(_registry.values(), key=lambda b: b.name)
    return [b.snapshot() for b in breakers]


def reset_breakers() -> None:
    """Forget every breaker (tests; an operator's "reset" button)."""
    with _registry_lock:
        _registry.clear()
