"""Write error rows to the store in batches.

Fresh rows from the queue carry new error_ids, so they go through the fast bulk path
(COPY on Postgres, multi-row INSERT on SQLite: executemany ran the full-text and rollup
triggers a statement at a time and held the writer to a few thousand rows/s). Rows
replayed from the spool may already be in the table (a commit whose acknowledgement was
lost), so they use INSERT ... ON CONFLICT (error_id) DO NOTHING.

The writer does not migrate: every entry point (the app's start-up, each CLI command, the
benchmarks) brings the database to the newest schema before anything is recorded, so a
schema upgrade never runs on the writer thread nor counts as the store being down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from core.auth.actor import system_actor
from core.store.dialect import bulk_insert
from core.store.schema import error_logs
from core.store.tx import write_tx

__all__ = ["insert_rows"]

_SCALAR_DEFAULTS = {c.name: c.default.arg for c in error_logs.columns
                    if isinstance(c.default, ScalarElementColumnDefault)}


def _insert_ignoring_duplicates(dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (error_id) DO NOTHING, the one place the dialects differ here."""
    dialect_insert = sqlite.insert if dialect_name == "sqlite" else postgresql.insert
    return dialect_insert(error_logs).on_conflict_do_nothing(index_elements=["error_id"])


def _value_rows(rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[list[dict[str, Any]]], Iterator[Sequence[Any]]]]:
    """The columns to insert and a function turning rows into value sequences in that order.

    The bulk path bypasses Core's column defaults, so they are filled in here. Rows from
    build_row all carry the same keys; then one C-level itemgetter per row replaces a
    Python loop over the columns (this runs on the writer thread, which shares the GIL
    with every caller of record()).
    """
    keys = rows[0].keys()
    if all(row.keys() == keys for row in rows):
        columns = [*keys, *(c for c in _SCALAR_DEFAULTS if c not in keys)]
        tail = tuple(_SCALAR_DEFAULTS[c] for c in columns[len(keys):])
        getter = itemgetter(*keys)

        def same_keys(chunk: list[dict[str, Any]]) -> Iterator[Sequence[Any]]:
            return (getter(row) + tail for row in chunk) if len(keys) > 1 else ((getter(row), *tail) for row in chunk)

        return columns, same_keys
    columns = list(dict.fromkeys([*(key for row in rows for key in row), *_SCALAR_DEFAULTS]))

    def mixed_keys(chunk: list[dict[str, Any]]) -> Iterator[Sequence[Any]]:
        return ([row.get(c, _SCALAR_DEFAULTS.get(c)) for c in columns] for row in chunk)

    return columns, mixed_keys


# every person's rows are stored by the system (COPY cannot run under Row Level Security either)
_WRITER = system_actor()


def insert_rows(engine: Engine, rows: list[dict[str, Any]], batch_size: int, *, replay: bool = False) -> None:
    """Insert `rows`, `batch_size` per transaction. Raises whatever the store raises.

    `replay`: the rows may already be stored; skip those instead of failing.
    """
    if not rows:
        return
    if not replay:
        columns, values = _value_rows(rows)
        for start in range(0, len(rows), batch_size):
            with write_tx(engine, actor=_WRITER) as conn:
                bulk_insert(conn, error_logs, columns, values(rows[start:start + batch_size]))
        return
    stmt = _insert_ignoring_duplicates(engine.dialect.name)
    for start in range(0, len(rows), batch_size):
        with write_tx(engine, actor=_WRITER) as conn:
            conn.execute(stmt, rows[start:start + batch_size])
