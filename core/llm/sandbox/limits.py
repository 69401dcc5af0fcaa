"""Requests-per-minute and tokens-per-minute limits, as token buckets like the real API's.

Each bucket holds up to `limit` units and refills continuously at `limit / 60` per second,
so a full minute's allowance can arrive as a burst and then flows at the steady rate.
A request is admitted only if every bucket can pay for it at once; a rejected request
takes nothing, so it never counts against anyone's usage.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Admission", "RateLimits"]

_WINDOW_S = 60.0


class _Bucket:
    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.level = float(limit)
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(float(self.limit), self.level + (now - self.stamp) * self.limit / _WINDOW_S)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (capped at its size, so a huge request can ever pass)."""
        need = min(amount, float(self.limit)) - self.level
        return 0.0 if need <= 0 else need * _WINDOW_S / self.limit

    def seconds_to_full(self) -> float:
        return max(0.0, (self.limit - self.level) * _WINDOW_S / self.limit)


@dataclass(frozen=True)
class Admission:
    """The verdict on one request, and the anthropic-ratelimit-* headers to send with any answer."""

    allowed: bool
    retry_after_s: float  # 0 when allowed
    limited_by: str  # "", "requests", "input_tokens" or "output_tokens"
    headers: dict[str, str]


class RateLimits:
    """Thread-safe token buckets for requests, input tokens and output tokens (0 = unlimited)."""

    def __init__(self, rpm: int = 0, input_tpm: int = 0, output_tpm: int = 0) -> None:
        self._lock = threading.Lock()
        self._limits = (0, 0, 0)
        self._buckets: dict[str, _Bucket] = {}
        self.configure(rpm, input_tpm, output_tpm)

    def configure(self, rpm: int, input_tpm: int, output_tpm: int) -> None:
        """Change the limits; a bucket whose limit did not change keeps its level."""
        now = time.monotonic()
        with self._lock:
            if (rpm, input_tpm, output_tpm) == self._limits:
                return
            self._limits = (rpm, input_tpm, output_tpm)
            for name, limit in (("requests", rpm), ("input_tokens", input_tpm), ("output_tokens", output_tpm)):
                old = self._buckets.get(name)
                if limit <= 0:
                    self._buckets.pop(name, None)
                elif old is None or old.limit != limit:
                    self._buckets[name] = _Bucket(limit, now)

    def reset(self) -> None:
        """Refill every bucket (as after a long quiet spell)."""
        now = time.monotonic()
        with self._lock:
            self._buckets = {name: _Bucket(b.limit, now) for name, b in self._buckets.items()}

    @property
    def active(self) -> bool:
        return bool(self._buckets)

    def admit(self, input_tokens: int, output_tokens: int) -> Admission:
        """Take one request and its tokens from the buckets if all can pay; otherwise take nothing."""
        cost = {"requests": 1.0, "input_tokens": float(input_tokens), "output_tokens": float(output_tokens)}
        now = time.monotonic()
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill(now)
            waits = {name: b.wait_for(cost[name]) for name, b in self._buckets.items()}
            worst = max(waits, key=lambda n: waits[n], default="")
            allowed = not worst or waits[worst] <= 0
            if allowed:
                for name, bucket in self._buckets.items():
                    bucket.level -= min(cost[name], float(bucket.limit))
            headers = self._headers_locked()
        if allowed:
            return Admission(True, 0.0, "", headers)
        return Admission(False, waits[worst], worst, headers)

    def headers(self) -> dict[str, str]:
        """The current anthropic-ratelimit-* headers (empty when no limit is set)."""
        now = time.monotonic()
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill(now)
            return self._headers_locked()

    def _headers_locked(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        wall = time.time()
        for name, bucket in self._buckets.items():
            prefix = f"anthropic-ratelimit-{name.replace('_', '-')}"
            headers[f"{prefix}-limit"] = str(bucket.limit)
            headers[f"{prefix}-remaining"] = str(max(0, math.floor(bucket.level)))
            headers[f"{prefix}-reset"] = _rfc3339(wall + bucket.seconds_to_full())
        token_buckets = [b for n, b in self._buckets.items() if n != "requests"]
        if token_buckets:
            # the combined "tokens" family reports the most restrictive token bucket
            tightest = min(token_buckets, key=lambda b: b.level / b.limit)
            headers["anthropic-ratelimit-tokens-limit"] = str(tightest.limit)
            headers["anthropic-ratelimit-tokens-remaining"] = str(max(0, math.floor(tightest.level)))
            headers["anthropic-ratelimit-tokens-reset"] = _rfc3339(wall + tightest.seconds_to_full())
        return headers


def _rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
