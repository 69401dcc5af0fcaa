"""Write error rows to the store: one executemany per batch, duplicates of an error_id ignored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from core.store import migrate
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["insert_rows"]


def _insert_ignoring_duplicates(dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (error_id) DO NOTHING, the one place the dialects differ here."""
    dialect_insert = sqlite.insert if dialect_name == "sqlite" else postgresql.insert
    return dialect_insert(error_logs).on_conflict_do_nothing(index_elements=["error_id"])


def insert_rows(engine: Engine, rows: list[dict[str, Any]], batch_size: int) -> None:
    """Insert `rows`, `batch_size` per transaction. Raises whatever the store raises."""
    if not rows:
        return
    # cheap after the first call per database; makes a fresh database usable for the log
    migrate(engine)
    stmt = _insert_ignoring_duplicates(engine.dialect.name)
    for start in range(0, len(rows), batch_size):
        with write_tx(engine) as conn:
            conn.execute(stmt, rows[start:start + batch_size])
