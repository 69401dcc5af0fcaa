"""Which fault, if any, a /v1/messages call gets: one seeded draw per call.

The sequence of draws is fixed by the seed, so a single client sending calls one after
another sees the same faults on every run. Under concurrency the draws are still the same
sequence, but which request receives which draw follows arrival order, which can vary.
"""

from __future__ import annotations

import random
import threading

from core.llm.sandbox.config import FAULT_STATUSES, SandboxConfig

__all__ = ["FAULT_KINDS", "FaultPicker"]

# names used in stats and by the server; status faults are named by their status
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "529",
    "slow",
    "disconnect",
    "stream_cut",
    "stream_error",
    "malformed_json",
    "invalid_conversation",
)


def _weights(config: SandboxConfig) -> list[tuple[str, float]]:
    spread = config.fault_rate / len(FAULT_STATUSES)
    return [
        ("429", config.rate_429 + spread),
        ("500", config.rate_500 + spread),
        ("503", config.rate_503 + spread),
        ("529", config.rate_529 + spread),
        ("slow", config.rate_slow),
        ("disconnect", config.rate_disconnect),
        ("stream_cut", config.rate_stream_cut),
        ("stream_error", config.rate_stream_error),
        ("malformed_json", config.rate_malformed_json),
        ("invalid_conversation", config.rate_invalid_conversation),
    ]


class FaultPicker:
    """A seeded random source shared by all connections of one server."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def pick(self, config: SandboxConfig) -> str | None:
        """A fault kind from FAULT_KINDS, or None for a normal answer."""
        with self._lock:
            # one draw per call, fault or not, so the sequence depends only on the call count
            draw = self._rng.random()
        edge = 0.0
        for kind, rate in _weights(config):
            edge += rate
            if draw < edge:
                return kind
        return None

    def uniform(self) -> float:
        """A seeded number in [0, 1) for choices inside a fault (e.g. how a reply is broken)."""
        with self._lock:
            return self._rng.random()
