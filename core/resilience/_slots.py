"""Sliding windows kept in time slots: one entry per slot, not one per event.

The limiter's 60 s windows and the breakers' windows see every call; at a few hundred calls
a second one entry per call holds tens of thousands of entries (megabytes) per window. An
entry here is [end of its slot, amount]: events within one settings.resilience_window_slot_s
add to the same entry, so a window of W seconds holds at most W / slot + 1 entries at any
rate. An event is stamped with the end of its slot, so it leaves the window at most one slot
late and never early: a window that caps a total never lets more through than one that
stamps each event exactly.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["add_to_slot", "expire_slots"]


def add_to_slot(window: deque[list[float]], at: float, amount: float, slot_s: float) -> None:
    """Add `amount` at time `at` (times never go back) to its slot's entry."""
    slot_end = math.ceil(at / slot_s) * slot_s
    if window and window[-1][0] == slot_end:
        window[-1][1] += amount
    else:
        window.append([slot_end, amount])


def expire_slots(window: deque[list[float]], horizon: float) -> float:
    """Drop the entries stamped at or before `horizon`; returns the amount dropped."""
    dropped = 0.0
    while window and window[0][0] <= horizon:
        dropped += window.popleft()[1]
    return dropped
