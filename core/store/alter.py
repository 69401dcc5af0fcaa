"""Migration steps that add what a database lacks: 0001 builds its tables from the live schema module, so a
fresh database already has every later column and index, and an older one gets them here."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["add_missing", "drop_added"]

Columns = dict[str, list[sa.Column[Any]]]
Indexes = dict[str, tuple[str, list[str]]]


def add_missing(op: Any, columns: Columns, indexes: Indexes) -> None:
    """Add each of `columns` (table -> columns) and `indexes` (name -> (table, columns)) the database lacks."""
    inspector = sa.inspect(op.get_bind())
    for table, wanted in columns.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in wanted if c.name not in have]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)
    for name, (table, on) in indexes.items():
        if name not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(name, table, on)


def drop_added(op: Any, columns: Columns, indexes: Indexes) -> None:
    """Undo add_missing: drop the indexes, then the columns."""
    for name, (table, _on) in indexes.items():
        op.drop_index(name, table_name=table)
    for table, wanted in columns.items():
        with op.batch_alter_table(table) as batch:
            for column in wanted:
                batch.drop_column(column.name)
