"""Process start-up tuning shared by every entry point: the app, the CLI and the benchmarks."""

from __future__ import annotations

import gc
import threading

__all__ = ["settle_heap"]

_lock = threading.Lock()
_settled = False


def settle_heap() -> bool:
    """Once per process, after start-up: collect, then freeze what is still alive (`gc.freeze`).

    What is alive once the imports and the start-up are done (modules, classes, the SDK, pandas,
    Streamlit) lives as long as the process, yet every full collection walked all of it again.
    Full collections come when many objects survive a while, as in a burst of recorded errors
    waiting for the writer: there they paused the recording thread for about a millisecond
    each and doubled record()'s mean cost (bench/errorlog.py). Frozen objects are never
    collected, so this runs once, on a heap just collected. Returns True the first time.
    """
    global _settled
    with _lock:
        if _settled:
            return False
        _settled = True
    gc.collect()
    gc.freeze()
    return True
