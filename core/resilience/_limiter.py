"""Client-side rate limiter: requests, input tokens and output tokens per minute.

Each of the three dimensions has two checks, and a call is admitted only when all six pass:

- a token bucket refilled continuously at limit/60 per second whose capacity is only
  settings.rate_limit_burst_s seconds' worth, so a batch is spread out instead of released
  as a minute's burst at t=0 (the burst that causes 429 storms at window boundaries);
- a sliding 60 s window of what was admitted, so no minute ever holds more than the limit
  even after an idle period refilled the bucket.

A request larger than the bucket is admitted when the bucket is full (it goes into debt);
one larger than the whole limit is admitted when the window is empty, so nothing waits forever.

The limits adapt (AIMD): `observe_headers` adopts a lower `-limit` the server announces and
counts usage the server sees but we did not cause (other processes on the same key);
`observe_rate_limited` pauses every acquisition for the retry-after and multiplies the rate
by settings.rate_limit_decrease_factor; after each quiet settings.rate_limit_relax_after_s
the rate grows back by settings.rate_limit_relax_step up to the configured one. A 429 whose
own rate-limit headers show room in every limit is not about our pace and changes nothing
here (its call still waits out retry-after in the retry policy).

Settings are read at each call. One threading lock guards the state and nothing sleeps or
awaits while holding it: `acquire` sleeps with the given sleep function, `aacquire` with
asyncio.sleep, both outside the lock, then check again.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.config import Settings, get_settings

__all__ = ["DIMENSIONS", "RateLimiter", "get_rate_limiter", "reset_rate_limiters"]

DIMENSIONS = ("requests", "input_tokens", "output_tokens")
_HEADER_PREFIX = {
    "requests": "anthropic-ratelimit-requests-",
    "input_tokens": "anthropic-ratelimit-input-tokens-",
    "output_tokens": "anthropic-ratelimit-output-tokens-",
}
_WINDOW_S = 60.0  # the limits are per minute
_SAME_RESPONSE_S = 1.0  # headers this fresh belong to the response that carried the 429
_EPS = 1e-9  # float slack, so a bucket refilled to 0.9999999 of a request admits it


@dataclass
class _Dimension:
    level: float = 0.0
    window: deque[list[float]] = field(default_factory=deque)  # [admitted at, amount]
    window_sum: float = 0.0
    server_limit: float | None = None
    initialised: bool = False


class RateLimiter:
    """Paces calls under settings.rate_limit_rpm / _input_tpm / _output_tpm (see module doc)."""

    def __init__(
        self,
        name: str = "claude",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_admit: Callable[[float, dict[str, float]], None] | None = None,
        window_s: float = _WINDOW_S,
    ) -> None:
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._on_admit = on_admit  # observer for tests and metrics, called under the lock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._dims = {d: _Dimension() for d in DIMENSIONS}
        self._last_refill: float | None = None
        self._factor = 1.0
        self._last_adjust = 0.0
        self._paused_until = 0.0
        self._rate_limited_count = 0
        self._ignored_429_count = 0
        # what the server's latest anthropic-ratelimit-*-remaining headers said: room left or not
        self._room_reported: bool | None = None
        self._room_reported_at = -math.inf

    # ---- public API -----------------------------------------------------------------------
    def acquire(self, est_input_tokens: int = 0, est_output_tokens: int = 0) -> float:
        """Block until one request with these estimated tokens fits; return the seconds waited."""
        needs = self._needs(est_input_tokens, est_output_tokens)
        waited = 0.0
        while True:
            wait = self._try_admit(needs)
            if wait <= 0.0:
                return waited
            self._sleep(wait)
            waited += wait

    async def aacquire(self, est_input_tokens: int = 0, est_output_tokens: int = 0) -> float:
        """The asyncio twin of `acquire` (awaits instead of blocking the loop)."""
        needs = self._needs(est_input_tokens, est_output_tokens)
        waited = 0.0
        while True:
            wait = self._try_admit(needs)
            if wait <= 0.0:
                return waited
            await self._async_sleep(wait)
            waited += wait

    def record_usage(self, input_tokens: int, output_tokens: int, est_input: int, est_output: int) -> None:
        """Replace an admitted call's estimate with its actual token counts."""
        with self._lock:
            now = self._clock()
            self._refresh(now, get_settings())
            self._correct("input_tokens", float(input_tokens - est_input), now)
            self._correct("output_tokens", float(output_tokens - est_output), now)

    def refund_request(self) -> None:
        """Give back the request slot of a call the server refused without serving it.

        The server does not count such a request against its limit, so counting it here would
        slow a batch under transient faults below the limit by the share of faulted calls.
        """
        with self._lock:
            now = self._clock()
            self._refresh(now, get_settings())
            self._correct("requests", -1.0, now)

    def observe_headers(self, headers: Mapping[str, Any] | Any) -> None:
        """Tighten to the server's view from anthropic-ratelimit-*-limit / -remaining / -reset."""
        if headers is None:
            return
        with self._lock:
            now = self._clock()
            s = get_settings()
            self._refresh(now, s)
            room: bool | None = None
            for dim_name, prefix in _HEADER_PREFIX.items():
                limit = _number(_header(headers, prefix + "limit"))
                remaining = _number(_header(headers, prefix + "remaining"))
                if remaining is not None:
                    room = (room is not False) and remaining >= 1
                reset_at = self._reset_monotonic(_header(headers, prefix + "reset"), now)
                dim = self._dims[dim_name]
                if limit is not None and limit > 0:
                    dim.server_limit = limit
                if remaining is None:
                    continue
                remaining = max(remaining, 0.0)
                ours = self._limit(dim_name, s) - dim.window_sum
                if remaining < ours:
                    # usage the server counts and we did not admit: book it, expiring when the
                    # server says its limit is replenished (or after a whole window)
                    at = now if reset_at is None else min(max(reset_at - self._window_s, now - self._window_s), now)
                    self._book(dim, at, ours - remaining)
                dim.level = min(dim.level, remaining)
            if room is not None:
                self._room_reported, self._room_reported_at = room, now

    def observe_rate_limited(self, retry_after_s: float | None = None) -> None:
        """A 429 arrived: pause every acquisition for retry_after_s and slow the rate down.

        Unless the server's rate-limit headers seen with it (call `observe_headers` first) say
        every limit still has room: then the 429 is not about our pace (an acceleration limit,
        an injected fault) and only that call waits, through its retry policy.
        """
        with self._lock:
            now = self._clock()
            s = get_settings()
            self._refresh(now, s)
            if self._room_reported and now - self._room_reported_at <= _SAME_RESPONSE_S:
                self._ignored_429_count += 1
                return
            pause = s.rate_limit_default_pause_s if retry_after_s is None else max(float(retry_after_s), 0.0)
            pause = min(pause, s.retry_after_cap_s)
            self._rate_limited_count += 1
            # 429s for calls sent before this pause began are echoes of the same overload
            if now >= self._paused_until:
                self._factor = max(self._factor * s.rate_limit_decrease_factor, s.rate_limit_min_factor)
            self._last_adjust = now
            self._paused_until = max(self._paused_until, now + pause)
            for dim in self._dims.values():
                # restart gently after the pause instead of with a full bucket
                dim.level = min(dim.level, 0.0)

    def snapshot(self) -> dict[str, Any]:
        """Effective limits per minute, capacity available now, pause state and AIMD factor."""
        with self._lock:
            now = self._clock()
            s = get_settings()
            self._refresh(now, s)
            paused_for = max(self._paused_until - now, 0.0)
            snap: dict[str, Any] = {
                "name": self.name,
                "effective_rpm": self._limit("requests", s),
                "effective_input_tpm": self._limit("input_tokens", s),
                "effective_output_tpm": self._limit("output_tokens", s),
                "factor": self._factor,
                "paused_for_s": paused_for,
                "paused_until": self._wall_clock() + paused_for if paused_for > 0 else None,
                "rate_limited": self._rate_limited_count,
                "rate_limited_ignored": self._ignored_429_count,
            }
            for dim_name, dim in self._dims.items():
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

    def _try_admit(self, needs: dict[str, float]) -> float:
        """Admit now (return 0) or return how long to wait before asking again."""
        with self._lock:
            now = self._clock()
            s = get_settings()
            self._refresh(now, s)
            wait = self._paused_until - now
            for dim_name, need in needs.items():
                wait = max(wait, self._wait_for(dim_name, need, now, s))
            if wait > _EPS:
                return wait
            for dim_name, need in needs.items():
                dim = self._dims[dim_name]
                dim.level -= need
                if need > 0:
                    self._book(dim, now, need)
            if self._on_admit is not None:
                self._on_admit(now, dict(needs))
            return 0.0

    def _wait_for(self, dim_name: str, need: float, now: float, s: Settings) -> float:
        if need <= 0:
            return 0.0
        dim = self._dims[dim_name]
        limit = self._limit(dim_name, s)
        rate = limit / self._window_s
        want = min(need, self._capacity(dim_name, s))
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

    def _refresh(self, now: float, s: Settings) -> None:
        # additive increase: each quiet period since the last change gives back one step
        if self._factor < 1.0 and now >= self._paused_until:
            quiet_since = max(self._last_adjust, self._paused_until)
            steps = math.floor((now - quiet_since) / s.rate_limit_relax_after_s)
            if steps > 0:
                self._factor = min(1.0, self._factor + steps * s.rate_limit_relax_step)
                self._last_adjust = quiet_since + steps * s.rate_limit_relax_after_s
        elapsed = 0.0 if self._last_refill is None else max(now - self._last_refill, 0.0)
        self._last_refill = now
        horizon = now - self._window_s
        for dim_name, dim in self._dims.items():
            capacity = self._capacity(dim_name, s)
            if not dim.initialised:
                dim.level, dim.initialised = capacity, True
            rate = self._limit(dim_name, s) / self._window_s
            dim.level = min(capacity, dim.level + elapsed * rate)
            while dim.window and dim.window[0][0] <= horizon:
                dim.window_sum -= dim.window.popleft()[1]
            if not dim.window:
                dim.window_sum = 0.0  # drop float drift

    def _limit(self, dim_name: str, s: Settings) -> float:
        configured = {
            "requests": s.rate_limit_rpm,
            "input_tokens": s.rate_limit_input_tpm,
            "output_tokens": s.rate_limit_output_tpm,
        }[dim_name]
        server = self._dims[dim_name].server_limit
        base = float(configured) if server is None else min(float(configured), server)
        return base * self._factor

    def _capacity(self, dim_name: str, s: Settings) -> float:
        capacity = self._limit(dim_name, s) / self._window_s * s.rate_limit_burst_s
        # a whole request must fit, or a low RPM would never admit one
        return max(capacity, 1.0) if dim_name == "requests" else capacity

    @staticmethod
    def _book(dim: _Dimension, at: float, amount: float) -> None:
        # entries stay in time order: an entry dated earlier than the newest goes before it
        entry = [at, amount]
        if dim.window and dim.window[-1][0] > at:
            index = len(dim.window)
            while index > 0 and dim.window[index - 1][0] > at:
                index -= 1
            dim.window.insert(index, entry)
        else:
            dim.window.append(entry)
        dim.window_sum += amount

    def _correct(self, dim_name: str, delta: float, now: float) -> None:
        dim = self._dims[dim_name]
        dim.level -= delta  # an over-estimate is given back to the bucket, an under-estimate taken
        dim.level = min(dim.level, self._capacity(dim_name, get_settings()))
        if delta > 0:
            self._book(dim, now, delta)
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

    def _reset_monotonic(self, value: Any, now: float) -> float | None:
        if value is None:
            return None
        try:
            reset_wall = datetime.fromisoformat(str(value).strip()).timestamp()
        except ValueError:
            return None
        return now + (reset_wall - self._wall_clock())


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
        return float(value)
    except (TypeError, ValueError):
        return None


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
