"""The error log: record errors cheaply and safely; they reach the store in the background.

    from core.errorlog import record, flush, shutdown, recent

`record(exc, component=...)` classifies, stamps and queues an error and returns its id at once;
a writer thread redacts, fingerprints and inserts it in batches, spooling to disk while the
database is unavailable. Queries, statistics and export live beside it (owned separately).
"""

from typing import Any

from core.errorlog.fingerprint import fingerprint, normalise_message
from core.errorlog.recorder import flush, recent, record, recorder_stats, reset_recorder, shutdown


def measure_record_cost(n: int = 20_000) -> dict[str, Any]:
    """Caller cost of record() and the writer's rows/s on the configured database (for bench/)."""
    # imported here so `python -m core.errorlog.measure` does not find itself half-imported
    from core.errorlog.measure import measure_record_cost as measure

    return measure(n)


__all__ = [
    "fingerprint",
    "flush",
    "measure_record_cost",
    "normalise_message",
    "recent",
    "record",
    "recorder_stats",
    "reset_recorder",
    "shutdown",
]
