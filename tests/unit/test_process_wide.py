"""Process-wide values: made once per key, shared, closed together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from core.process_wide import ProcessWide


def test_a_key_is_made_once_and_shared_by_every_thread():
    """Eight threads asking for one key at once get the same value, made by one call."""
    made: list[object] = []
    values = ProcessWide[object]()
    start = threading.Barrier(8)

    def make() -> object:
        made.append(object())
        return made[-1]

    def ask(_: int) -> object:
        start.wait()
        return values.get("db", make)

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(ask, range(8)))
    assert len(made) == 1
    assert got == made * 8


def test_clear_closes_every_value_and_the_next_get_makes_a_new_one():
    """clear() hands each value to close once; asking again afterwards makes a fresh value."""
    closed: list[str] = []
    values = ProcessWide[str](close=closed.append)
    assert values.get("a", lambda: "a1") == "a1"
    assert values.get("b", lambda: "b1") == "b1"
    values.clear()
    assert sorted(closed) == ["a1", "b1"]
    assert values.get("a", lambda: "a2") == "a2"
