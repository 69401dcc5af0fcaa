"""One value per key for the whole process (an engine per database URL, a watcher per engine), made on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ProcessWide"]

V = TypeVar("V")


class ProcessWide(Generic[V]):
    """Values made once per key and shared by every thread; `clear()` closes and forgets them all."""

    def __init__(self, close: Callable[[V], object] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, V] = {}
        self._close = close

    def get(self, key: str, make: Callable[[], V]) -> V:
        """The value for `key`, made by `make()` the first time (under the lock, so only once)."""
        with self._lock:
            value = self._values.get(key)
            if value is None:
                value = self._values[key] = make()
            return value

    def clear(self) -> None:
        with self._lock:
            if self._close is not None:
                for value in self._values.values():
                    self._close(value)
            self._values.clear()
