"""Client-side rate limiter: requests, input tokens and output tokens per minute, per model.

Pacing. Each of the three dimensions has two checks, and a call is admitted only when all six pass:

- a token bucket refilled continuously at limit/60 per second whose capacity is only
  settings.rate_limit_burst_s seconds' worth (default half a second). The API's own limit is a
  token bucket too, whose burst allowance we cannot see; a smaller bucket of ours at the same
  rate can never empty it by itself, so a batch paced here draws no 429 of its own making;
- a sliding 60 s window of what was admitted, so no minute ever holds more than the limit
  even after an idle period refilled the bucket. It is kept in time slots
  (core.resilience._slots), so its memory is bounded at any request rate.

A request larger than the bucket is admitted when the bucket is full (it goes into debt);
one larger than the whole limit is admitted when the window is empty, so nothing waits forever.
The configured limits are per model (the API's are per model class): each model a call names
has its own buckets, windows and back-off state.

What the API's answers mean here (the headers as the API documents them, "anthropic-ratelimit-"
left out; they come with every answer, successful or not, and may be partial or missing):

- ``requests-limit``, ``input-tokens-limit``, ``output-tokens-limit``: the most the model's
  limit allows per minute. A value below the configured one becomes the effective limit of
  that model; a higher one changes nothing (the configured limit is what the user asked for).
- ``*-remaining``: what is left in the API's bucket now. It is evidence, not a booking: the
  API's bucket refills at limit/60 per second like ours, so our bucket is lowered to it when
  it says less than we hold (other clients on the same key use the difference) and is then
  refilled at our pace. Nothing is booked for a minute.
- ``*-reset``: when the API's bucket will be full again (RFC 3339). A continuously refilled
  bucket is paced by its rate, not by when it is full, so it is not used for pacing, and a reset
  without a remaining says nothing about what is left.
- ``tokens-remaining`` (the most restrictive token limit) counts, like the others, only in
  deciding whether a 429 said a limit was exhausted.
- ``retry-after`` (and ``retry-after-ms``): how long the request that got the answer must wait.
  The SDK's own retry loop reads retry-after-ms, then retry-after (seconds or an HTTP date), and
  sleeps that long before retrying that one request (else 0.5 s doubling to 8 s, two retries).
  Ours is off (max_retries=0); the retry policy in core.resilience waits it the same way, for that
  request only, and the limiter does not pause anyone else for it.

429s (``observe_rate_limited``; a spend-limit 429 never comes here):

- with rate-limit headers that show room in every limit: not about our pace (an acceleration
  limit, a fault); it changes nothing here;
- with a remaining of zero: our pace outran the API's bucket. The model's rate is cut by
  settings.rate_limit_decrease_factor (at most once per settings.rate_limit_relax_after_s:
  the 429s of calls already in flight are echoes of the same cause) and its request bucket
  emptied, so the next call waits one refill at the new rate;
- without rate-limit headers (an organisation limit shared with other clients, a proxy): by
  itself it changes nothing. Only when such 429s are sustained — at least
  settings.rate_limit_sustained_min of them and settings.rate_limit_sustained_share of the
  answers within settings.rate_limit_sustained_window_s — is the rate cut as above.

After a cut, each quiet settings.rate_limit_relax_after_s gives back settings.rate_limit_relax_step
of the configured rate, so a few 429s cost seconds, not minutes. The rate never falls below
settings.rate_limit_min_factor of the configured one.

A request slot is never given back: the API counts answered requests against its limit, 429s and
5xx included. `refund_request` exists for an upstream that does not (settings.rate_limit_refund_statuses).

Waits: a call waiting longer than settings.rate_limit_visible_wait_s is recorded in the error log
once per episode (an episode ends when no call has waited that long for as long again), and `snapshot()["longest_wait_s"]` says
how long the call that has waited longest has waited, so a batch can show it.

Settings are read at each call. One threading lock guards the state (a limiter serves every
event loop of the process: the batch worker's, and those of `core.llm.loops.run_sync`) and nothing
awaits while holding it: `aacquire` awaits the given sleep (asyncio.sleep) outside the lock,
then checks again.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings, get_settings
from core.errorlog import record
from core.errors import Action, APIError, ErrorCode, Severity
from core.resilience._slots import add_to_slot, expire_slots

__all__ = ["DIMENSIONS", "RateLimiter", "get_rate_limiter", "reset_rate_limiters"]

DIMENSIONS = ("requests", "input_tokens", "output_tokens")
_PREFIX = "anthropic-ratelimit-"
_HEADER = {"requests": "requests", "input_tokens": "input-tokens", "output_tokens": "output-tokens"}
_EVIDENCE_ONLY = ("tokens",)  # a remaining that says exhausted or not, but is no dimension of ours
_WINDOW_S = 60.0  # the limits are per minute
_EPS = 1e-9  # float slack, so a bucket refilled to 0.9999999 of a request admits it


@dataclass
class _Dimension:
    level: float = 0.0
    window: deque[list[float]] = field(default_factory=deque)  # [end of its slot, amount], see _slots
    window_sum: float = 0.0
    server_limit: float | None = None
    initialised: bool = False


@dataclass
class _Pace:
    """Everything the limiter knows about one model's limits."""

    dims: dict[str, _Dimension] = field(default_factory=lambda: {d: _Dimension() for d in DIMENSIONS})
    last_refill: float | None = None
    factor: float = 1.0
    last_cut: float = -math.inf
    last_adjust: float = 0.0
    answers: deque[float] = field(default_factory=deque)  # when answers arrived
    headerless_429s: deque[float] = field(default_factory=deque)  # when 429s without rate-limit headers did


class _LimiterWait(APIError):
    """A call waits longer than settings.rate_limit_visible_wait_s for the rate limiter (an info row)."""

    default_code = ErrorCode.RATE_LIMIT_WAIT
    default_severity = Severity.INFO
    default_recoverable = True
    default_action = Action.RETRY


class RateLimiter:
    """Paces calls under settings.rate_limit_rpm / _input_tpm / _output_tpm (see module doc)."""

    def __init__(
        self,
        name: str = "claude",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_admit: Callable[[float, dict[str, float]], None] | None = None,
        on_long_wait: Callable[[dict[str, Any]], None] | None = None,
        window_s: float = _WINDOW_S,
    ) -> None:
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_admit = on_admit  # observer for tests and metrics, called under the lock
        self._on_long_wait = on_long_wait or _record_long_wait  # called outside the lock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._paces: dict[str, _Pace] = {}
        self._last_model = ""
        self._rate_limited_count = 0  # 429s that cut the rate
        self._ignored_429_count = 0  # 429s that did not
        self._waiting: dict[int, float] = {}  # acquisition -> when it first had to wait
        self._tickets = itertools.count()
        self._long_wait_until = -math.inf  # when the latest long wait ends (as planned)

    # ---- public API -----------------------------------------------------------------------
    async def aacquire(self, est_input_tokens: int = 0, est_output_tokens: int = 0, *,
                       model: str | None = None) -> float:
        """Wait (awaiting, never blocking the loop) until one request with these estimated tokens fits.

        Returns the seconds waited.
        """
        needs = self._needs(est_input_tokens, est_output_tokens)
        ticket = next(self._tickets)
        waited = 0.0
        try:
            while True:
                wait = self._try_admit(needs, model, ticket, waited)
                if wait <= 0.0:
                    return waited
                await self._sleep(wait)
                waited += wait
        finally:
            self._done_waiting(ticket)

    def record_usage(self, input_tokens: int, output_tokens: int, est_input: int, est_output: int, *,
                     model: str | None = None) -> None:
        """Replace an admitted call's estimate with its actual token counts."""
        with self._lock:
            now, s = self._clock(), get_settings()
            pace = self._pace(model, now, s)
            self._correct(pace, "input_tokens", float(input_tokens - est_input), now, s)
            self._correct(pace, "output_tokens", float(output_tokens - est_output), now, s)

    def refund_request(self, *, model: str | None = None) -> None:
        """Give back the request slot of a call an upstream refused without counting it (see module doc)."""
        with self._lock:
            now, s = self._clock(), get_settings()
            self._correct(self._pace(model, now, s), "requests", -1.0, now, s)

    def observe_headers(self, headers: Mapping[str, Any] | Any, *, model: str | None = None) -> None:
        """One answer arrived: adopt a lower -limit and lower our buckets to a smaller -remaining."""
        if headers is None:
            return
        with self._lock:
            now, s = self._clock(), get_settings()
            pace = self._pace(model, now, s)
            pace.answers.append(now)
            self._trim_answers(pace, now, s)  # keeps memory flat over a long batch
            for dim_name, infix in _HEADER.items():
                dim = pace.dims[dim_name]
                limit = _number(_header(headers, f"{_PREFIX}{infix}-limit"))
                if limit is not None and limit > 0:
                    dim.server_limit = limit
                remaining = _number(_header(headers, f"{_PREFIX}{infix}-remaining"))
                if remaining is not None:
                    dim.level = min(dim.level, max(remaining, 0.0))

    def observe_rate_limited(self, retry_after_s: float | None = None, headers: Mapping[str, Any] | Any = None,
                             *, model: str | None = None) -> None:
        """A 429 arrived with these headers (its own): cut the rate if it is about our pace (see module doc).

        `retry_after_s` is the wait of the request that got it; the retry policy waits it, not the limiter.
        """
        del retry_after_s  # only that request waits, in its retry policy
        exhausted = _exhausted(headers)
        with self._lock:
            now, s = self._clock(), get_settings()
            pace = self._pace(model, now, s)
            if exhausted is False:
                self._ignored_429_count += 1
                return
            if exhausted is None:
                pace.headerless_429s.append(now)
                self._trim_answers(pace, now, s)
                sustained = (len(pace.headerless_429s) >= s.rate_limit_sustained_min
                             and len(pace.headerless_429s) >= s.rate_limit_sustained_share * max(len(pace.answers), 1))
                if not sustained:
                    self._ignored_429_count += 1
                    return
            self._rate_limited_count += 1
            if now - pace.last_cut >= s.rate_limit_relax_after_s:
                pace.factor = max(pace.factor * s.rate_limit_decrease_factor, s.rate_limit_min_factor)
                pace.last_cut = pace.last_adjust = now
                pace.headerless_429s.clear()  # the next cut is decided on what comes after this one
            # the next request waits one refill at the new rate (a remaining of 0 already lowered
            # the dimension it names, through observe_headers)
            requests = pace.dims["requests"]
            requests.level = min(requests.level, 0.0)

    def snapshot(self, model: str | None = None) -> dict[str, Any]:
        """Effective limits per minute, capacity now, the AIMD factor and the longest current wait.

        `model` None: the model of the latest call.
        """
        with self._lock:
            now, s = self._clock(), get_settings()
            key = self._last_model if model is None else model
            pace = self._pace(key, now, s)
            self._trim_answers(pace, now, s)
            longest = max((now - since for since in self._waiting.values()), default=0.0)
            snap: dict[str, Any] = {
                "name": self.name,
                "model": key or None,
                "effective_rpm": self._limit(pace, "requests", s),
                "effective_input_tpm": self._limit(pace, "input_tokens", s),
                "effective_output_tpm": self._limit(pace, "output_tokens", s),
                "factor": pace.factor,
                "rate_limited": self._rate_limited_count,
                "rate_limited_ignored": self._ignored_429_count,
                "waiting": len(self._waiting),
                "longest_wait_s": longest,
            }
            for dim_name, dim in pace.dims.items():
                snap[f"{dim_name}_available"] = max(dim.level, 0.0)
                snap[f"{dim_name}_in_window"] = dim.window_sum
                snap[f"{dim_name}_server_limit"] = dim.server_limit
            return snap

    # ---- internals (call with the lock held) -------------------------------------------
    @staticmethod
    def _needs(est_input_tokens: int, est_output_tokens: int) -> dict[str, float]:
        return {
            "requests": 1.0,
            "input_tokens": float(max(est_input_tokens, 0)),
            "output_tokens": float(max(est_output_tokens, 0)),
        }

    def _try_admit(self, needs: dict[str, float], model: str | None, ticket: int, waited: float) -> float:
        """Admit now (return 0) or return how long to wait before asking again."""
        report: dict[str, Any] | None = None
        with self._lock:
            now, s = self._clock(), get_settings()
            pace = self._pace(model, now, s)
            self._last_model = model or ""
            waits = {dim_name: self._wait_for(pace, dim_name, need, now, s) for dim_name, need in needs.items()}
            wait = max(waits.values())
            if wait <= _EPS:
                for dim_name, need in needs.items():
                    dim = pace.dims[dim_name]
                    dim.level -= need
                    if need > 0:
                        self._book(dim, now, need, s)
                if self._on_admit is not None:
                    self._on_admit(now, dict(needs))
                return 0.0
            self._waiting.setdefault(ticket, now)
            if waited + wait > s.rate_limit_visible_wait_s:
                # one record per episode: calls waiting long one after another are the same story
                new_episode = now - self._long_wait_until > s.rate_limit_visible_wait_s
                self._long_wait_until = max(self._long_wait_until, now + wait)
                if new_episode:
                    report = self._wait_report(pace, waits, model, waited, wait, s)
        if report is not None:
            self._on_long_wait(report)
        return wait

    def _wait_report(self, pace: _Pace, waits: dict[str, float], model: str | None, waited: float, wait: float,
                     s: Settings) -> dict[str, Any]:
        bound = max(waits, key=lambda d: waits[d])
        return {"limiter": self.name, "model": model, "bound_by": bound, "waited_s": round(waited, 1),
                "wait_s": round(waited + wait, 1), "limit_per_min": self._limit(pace, bound, s),
                "factor": pace.factor}

    def _done_waiting(self, ticket: int) -> None:
        with self._lock:
            self._waiting.pop(ticket, None)

    def _pace(self, model: str | None, now: float, s: Settings) -> _Pace:
        """The model's pace, refreshed to `now` (refill, window expiry, recovery after a cut)."""
        key = model or ""
        pace = self._paces.get(key)
        if pace is None:
            pace = self._paces[key] = _Pace()
        # additive increase: each quiet period since the last change gives back one step
        if pace.factor < 1.0:
            steps = math.floor((now - pace.last_adjust) / s.rate_limit_relax_after_s)
            if steps > 0:
                pace.factor = min(1.0, pace.factor + steps * s.rate_limit_relax_step)
                pace.last_adjust += steps * s.rate_limit_relax_after_s
        elapsed = 0.0 if pace.last_refill is None else max(now - pace.last_refill, 0.0)
        pace.last_refill = now
        horizon = now - self._window_s
        for dim_name, dim in pace.dims.items():
            capacity = self._capacity(pace, dim_name, s)
            if not dim.initialised:
                dim.level, dim.initialised = capacity, True
            rate = self._limit(pace, dim_name, s) / self._window_s
            dim.level = min(capacity, dim.level + elapsed * rate)
            dim.window_sum -= expire_slots(dim.window, horizon)
            if not dim.window:
                dim.window_sum = 0.0  # drop float drift
        return pace

    @staticmethod
    def _trim_answers(pace: _Pace, now: float, s: Settings) -> None:
        horizon = now - s.rate_limit_sustained_window_s
        for times in (pace.answers, pace.headerless_429s):
            while times and times[0] <= horizon:
                times.popleft()

    def _wait_for(self, pace: _Pace, dim_name: str, need: float, now: float, s: Settings) -> float:
        if need <= 0:
            return 0.0
        dim = pace.dims[dim_name]
        limit = self._limit(pace, dim_name, s)
        rate = limit / self._window_s
        want = min(need, self._capacity(pace, dim_name, s))
        bucket_wait = 0.0 if dim.level + _EPS >= want else (want - dim.level) / rate
        if dim.window_sum + need <= limit + _EPS or dim.window_sum <= _EPS:
            return bucket_wait
        # the earliest moment enough of the window has expired
        freed = 0.0
        window_wait = 0.0
        for at, amount in dim.window:
            freed += amount
            window_wait = at + self._window_s - now
            if dim.window_sum - freed + need <= limit + _EPS:
                break
        return max(bucket_wait, window_wait, _EPS * 2)

    @staticmethod
    def _limit(pace: _Pace, dim_name: str, s: Settings) -> float:
        configured = {
            "requests": s.rate_limit_rpm,
            "input_tokens": s.rate_limit_input_tpm,
            "output_tokens": s.rate_limit_output_tpm,
        }[dim_name]
        server = pace.dims[dim_name].server_limit
        base = float(configured) if server is None else min(float(configured), server)
        return base * pace.factor

    def _capacity(self, pace: _Pace, dim_name: str, s: Settings) -> float:
        capacity = self._limit(pace, dim_name, s) / self._window_s * s.rate_limit_burst_s
        # a whole request must fit, or a low RPM would never admit one
        return max(capacity, 1.0) if dim_name == "requests" else capacity

    @staticmethod
    def _book(dim: _Dimension, at: float, amount: float, s: Settings) -> None:
        add_to_slot(dim.window, at, amount, s.resilience_window_slot_s)
        dim.window_sum += amount

    def _correct(self, pace: _Pace, dim_name: str, delta: float, now: float, s: Settings) -> None:
        dim = pace.dims[dim_name]
        dim.level = min(dim.level - delta, self._capacity(pace, dim_name, s))  # an over-estimate is given back
        if delta > 0:
            self._book(dim, now, delta, s)
            return
        # an over-estimate: take it back from the newest admissions, which it most likely belongs to
        remaining = -delta
        for entry in reversed(dim.window):
            if remaining <= 0:
                break
            taken = min(entry[1], remaining)
            entry[1] -= taken
            dim.window_sum -= taken
            remaining -= taken


def _exhausted(headers: Any) -> bool | None:
    """True if a -remaining header says a limit is used up, False if all those present show room, None if none."""
    if headers is None:
        return None
    seen = False
    for infix in (*_HEADER.values(), *_EVIDENCE_ONLY):
        remaining = _number(_header(headers, f"{_PREFIX}{infix}-remaining"))
        if remaining is None:
            continue
        if remaining < 1:
            return True
        seen = True
    return False if seen else None


def _header(headers: Any, key: str) -> Any:
    try:
        value = headers.get(key)
        if value is None and isinstance(headers, Mapping):
            # plain dicts are case-sensitive; httpx-style headers are not
            lowered = {str(k).lower(): v for k, v in headers.items()}
            value = lowered.get(key)
        return value
    except AttributeError:
        return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _record_long_wait(report: dict[str, Any]) -> None:
    bound = str(report["bound_by"]).replace("_", " ")
    event = _LimiterWait(
        f"A call waits {report['wait_s']} s for the rate limiter, bound by {bound} "
        f"({report['limit_per_min']:,.0f} per minute).",
        user_message=f"Calls are waiting for the rate limit ({bound} per minute); they go on by themselves.",
        context=report)
    record(event, component=f"limiter.{report['limiter']}", severity=str(Severity.INFO), context=report)


_registry_lock = threading.Lock()
_registry: dict[str, RateLimiter] = {}


def get_rate_limiter(name: str = "claude") -> RateLimiter:
    """The process-wide limiter for service `name`, created on first use."""
    with _registry_lock:
        limiter = _registry.get(name)
        if limiter is None:
            limiter = _registry[name] = RateLimiter(name)
        return limiter


def reset_rate_limiters() -> None:
    """Forget every limiter (tests)."""
    with _registry_lock:
        _registry.clear()
