"""The error log: record errors cheaply and safely; they reach the store in the background.

    from core.errorlog import record, flush, shutdown, recent

`record(exc, component=...)` classifies, stamps and queues an error and returns its id at once;
a writer thread redacts, fingerprints and inserts it in batches, spooling to disk while the
database is unavailable. Queries, statistics and export live beside it (owned separately).
"""

from core.errorlog.fingerprint import fingerprint, normalise_message
from core.errorlog.measure import measure_record_cost
from core.errorlog.recorder import flush, recent, record, recorder_stats, reset_recorder, shutdown

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
