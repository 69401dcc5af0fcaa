"""CSV export of exactly the rows a filter selects, streamed row by row.

Columns (fixed, in this order; `EXPORT_COLUMNS`):

    error_id, created_at (ISO 8601, UTC), severity, error_type, error_code, component,
    message, user_message, request_id, operation_id (batch id), attempt, fingerprint,
    user_id, session_id, environment, is_recoverable, recovery_action, recovered,
    resolved, resolved_at, resolved_by, context (JSON)

Stack traces are left out (multi-line and large; the detail view shows them). Rows come
in the list's order (newest first unless a sort is given) from a server-side cursor, so memory stays flat
whatever the row count. Cells are made safe for spreadsheets by `core.csv_cells.safe_cell`
(formula-like cells quoted, NULs dropped), the helper every CSV export uses.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TextIO

from sqlalchemy import select

from core.config import get_settings
from core.csv_cells import safe_cell
from core.errorlog.filters import Bind, ErrorFilter, bind_connection, filter_conditions, ordering
from core.store.schema import error_logs

__all__ = ["EXPORT_COLUMNS", "export_csv", "iter_csv_chunks", "safe_cell"]

EXPORT_COLUMNS: tuple[str, ...] = (
    "error_id", "created_at", "severity", "error_type", "error_code", "component", "message", "user_message",
    "request_id", "operation_id", "attempt", "fingerprint", "user_id", "session_id", "environment",
    "is_recoverable", "recovery_action", "recovered", "resolved", "resolved_at", "resolved_by", "context",
)
# flush the in-memory buffer of iter_csv_chunks at about this many characters
_CHUNK_CHARS = 64 * 1024


def _iter_records(bind: Bind, flt: ErrorFilter | None, order: str, sort: str) -> Iterator[list[str]]:
    columns = [error_logs.c[name] for name in EXPORT_COLUMNS]
    batch = get_settings().log_export_batch_rows
    order_by = ordering(order, sort)
    with bind_connection(bind) as conn:
        stmt = select(*columns).where(*filter_conditions(conn, flt)).order_by(*order_by)
        # stream_results: a server-side cursor on Postgres; yield_per bounds what is buffered
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        try:
            for row in result:
                yield [safe_cell(v) for v in row]
        finally:
            result.close()


def export_csv(bind: Bind, flt: ErrorFilter | None, out: TextIO, *, order: str = "newest", sort: str = "time") -> int:
    """Write the header and every row matching `flt` to `out`, in the list's order; returns the number of rows."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for record in _iter_records(bind, flt, order, sort):
        writer.writerow(record)
        count += 1
    return count


def iter_csv_chunks(
    bind: Bind, flt: ErrorFilter | None, *, order: str = "newest", sort: str = "time"
) -> Iterator[str]:
    """The same CSV as `export_csv`, as text chunks of about 64 KB (for a download button)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for record in _iter_records(bind, flt, order, sort):
        writer.writerow(record)
        if buffer.tell() >= _CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
