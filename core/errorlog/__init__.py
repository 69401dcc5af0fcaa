"""The error log: record errors cheaply and safely; they reach the store in the background.

    from core.errorlog import record, flush, shutdown, recent

`record(exc, component=...)` classifies, stamps and queues an error and returns its id at once;
a writer thread redacts, fingerprints and inserts it in batches, spooling to disk while the
database is unavailable. Reading it back is one module per question, all re-exported here:
`filters` (ErrorFilter), `search` (a page of rows, one row), `stats` (counts and series),
`groups` (by fingerprint), `resolve` (mark resolved) and `retention` (remove old rows);
the CSV export is `core.errorlog.export`.
"""

from core.errorlog.filters import ERROR_TYPE_NAMES, SEVERITY_ORDER, ErrorFilter
from core.errorlog.fingerprint import fingerprint, normalise_message
from core.errorlog.groups import error_groups, error_groups_page
from core.errorlog.recorder import flush, recent, record, recorder_stats, reset_recorder, shutdown
from core.errorlog.resolve import set_resolved
from core.errorlog.retention import apply_retention, retention_preview
from core.errorlog.search import get_error, search_errors
from core.errorlog.stats import error_stats

__all__ = [
    "ERROR_TYPE_NAMES",
    "SEVERITY_ORDER",
    "ErrorFilter",
    "apply_retention",
    "error_groups",
    "error_groups_page",
    "error_stats",
    "fingerprint",
    "flush",
    "get_error",
    "normalise_message",
    "recent",
    "record",
    "recorder_stats",
    "reset_recorder",
    "retention_preview",
    "search_errors",
    "set_resolved",
    "shutdown",
]
