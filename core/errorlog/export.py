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

Only rows the actor may export are written (an analyst's own and the system's). An export
that completes is audited (`export.errors_csv`, with the filter, order and row count), in
the transaction that follows its read: a failed export leaves no audit row. The read
itself writes nothing, so a long export never holds SQLite's write lock.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Connection, select

from core.auth.audit import AuditAction, audit
from core.auth.permissions import Action
from core.config import get_settings
from core.csv_cells import safe_cell
from core.errorlog.filters import Bind, ErrorFilter, bind_connection, filter_conditions, ordering, searched
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["EXPORT_COLUMNS", "export_csv", "iter_csv_chunks", "safe_cell"]

EXPORT_COLUMNS: tuple[str, ...] = (
    "error_id", "created_at", "severity", "error_type", "error_code", "component", "message", "user_message",
    "request_id", "operation_id", "attempt", "fingerprint", "user_id", "session_id", "environment",
    "is_recoverable", "recovery_action", "recovered", "resolved", "resolved_at", "resolved_by", "context",
)
# flush the in-memory buffer of iter_csv_chunks at about this many characters
_CHUNK_CHARS = 64 * 1024


def _iter_records(bind: Bind, flt: ErrorFilter | None, order: str, sort: str) -> Generator[list[str], None, None]:
    columns = [error_logs.c[name] for name in EXPORT_COLUMNS]
    batch = get_settings().log_export_batch_rows
    order_by = ordering(order, sort)
    with bind_connection(bind) as conn:
        stmt = searched(conn, flt, select(*columns).where(*filter_conditions(conn, flt, action=Action.EXPORT))
                        .order_by(*order_by))
        # stream_results: a server-side cursor on Postgres; yield_per bounds what is buffered
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        try:
            for row in result:
                yield [safe_cell(v) for v in row]
        finally:
            result.close()


def filter_detail(flt: ErrorFilter | None) -> dict[str, Any]:
    """What `flt` narrows to, as the audit row keeps it: the fields that filter, times in ISO 8601."""
    if flt is None:
        return {}
    default = ErrorFilter()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(flt):
        value = getattr(flt, f.name)
        if value == getattr(default, f.name) and f.name != "kind":
            continue
        out[f.name] = value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
    return out


def _audit_export(bind: Bind, flt: ErrorFilter | None, rows: int, order: str, sort: str,
                  then: Callable[[], None] | None = None) -> None:
    """One audit row for a finished export, and `then` in the same transaction (the file landing)."""
    detail = {"filter": filter_detail(flt), "order": order, "sort": sort, "rows": rows}

    def write(conn: Connection) -> None:
        audit(conn, AuditAction.EXPORT_ERRORS_CSV, "error_log", None, detail)
        if then is not None:
            then()

    if isinstance(bind, Connection):
        write(bind)
        return
    with write_tx(bind) as conn:
        write(conn)


def export_csv(bind: Bind, flt: ErrorFilter | None, out: TextIO, *, order: str = "newest", sort: str = "time",
               then: Callable[[], None] | None = None) -> int:
    """Write the header and every row matching `flt` to `out`, in the list's order; returns the number of rows.

    The export is audited once every row is written; `then` (the CLI moving the finished file
    into place) runs inside the audit's transaction, so the file lands if and only if the
    audit row does.
    """
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for record in _iter_records(bind, flt, order, sort):
        writer.writerow(record)
        count += 1
    _audit_export(bind, flt, count, order, sort, then)
    return count


def iter_csv_chunks(
    bind: Bind, flt: ErrorFilter | None, *, order: str = "newest", sort: str = "time"
) -> Iterator[str]:
    """The same CSV as `export_csv`, as text chunks of about 64 KB, each of whole rows (for a download button).

    Audited when the reader is done: at the end, or when it closes the chunks early (a
    download at its size limit), counting the rows of the chunks it took before the last one
    it was handed, which it dropped. A failed read leaves no audit row.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    records = _iter_records(bind, flt, order, sort)
    taken = in_buffer = 0
    try:
        for record in records:
            writer.writerow(record)
            in_buffer += 1
            if buffer.tell() >= _CHUNK_CHARS:
                yield buffer.getvalue()
                taken, in_buffer = taken + in_buffer, 0
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
        taken += in_buffer
    except GeneratorExit:
        pass  # the reader stopped early (its size limit): what it took is audited below
    finally:
        records.close()  # the read's connection goes back before the audit's write
    _audit_export(bind, flt, taken, order, sort)
