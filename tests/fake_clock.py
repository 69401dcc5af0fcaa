"""FakeClock: a monotonic clock that moves only when a test advances it or code sleeps on it."""

from __future__ import annotations

import asyncio
import threading

WALL_START = 1_800_000_000.0


class FakeClock:
    """Call it for the time; `sleep`/`advance` move it; `wall` is the epoch time it stands for. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def wall(self) -> float:
        return WALL_START + self() - self.start

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    sleep = advance  # code that sleeps on this clock moves it instead of waiting

    async def async_sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)  # let the other coroutines run
