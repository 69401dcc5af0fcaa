"""Write error rows to the store in batches.

Fresh rows from the queue carry new error_ids, so they go through the fast bulk path
(COPY on Postgres, multi-row INSERT on SQLite: executemany ran the full-text and rollup
triggers a statement at a time and held the writer to a few thousand rows/s). Rows
replayed from the spool may already be in the table (a commit whose acknowledgement was
lost), so they use INSERT ... ON CONFLICT (error_id) DO NOTHING.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from core.store import migrate
from core.store.dialect import bulk_insert
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["insert_rows"]

_SCALAR_DEFAULTS = {c.name: c.default.arg for c in error_logs.columns
                    if c.default is not None and c.default.is_scalar}


def _insert_ignoring_duplicates(dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (error_id) DO NOTHING, the one place the dialects differ here."""
    dialect_insert = sqlite.insert if dialect_name == "sqlite" else postgresql.insert
    return dialect_insert(error_logs).on_conflict_do_nothing(index_elements=["error_id"])


def insert_rows(engine: Engine, rows: list[dict[str, Any]], batch_size: int, *, replay: bool = False) -> None:
    """Insert `rows`, `batch_size` per transaction. Raises whatever the store raises.

    `replay`: the rows may already be stored; skip those instead of failing.
    """
    if not rows:
        return
    # cheap after the first call per database; makes a fresh database usable for the log
    migrate(engine)
    if not replay:
        # the bulk path bypasses Core's column defaults, so they are filled in here
        columns = list(dict.fromkeys([*(key for row in rows for key in row), *_SCALAR_DEFAULTS]))
        for start in range(0, len(rows), batch_size):
            with write_tx(engine) as conn:
                bulk_insert(conn, error_logs, columns,
                            ([row.get(c, _SCALAR_DEFAULTS.get(c)) for c in columns]
                             for row in rows[start:start + batch_size]))
        return
    stmt = _insert_ignoring_duplicates(engine.dialect.name)
    for start in range(0, len(rows), batch_size):
        with write_tx(engine) as conn:
            conn.execute(stmt, rows[start:start + batch_size])
