"""The one small place where SQLite and Postgres differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal_column
from sqlalchemy.engine import Connection, Dialect

__all__ = ["is_sqlite", "time_bucket", "escape_like"]


def is_sqlite(bind: Connection | Dialect) -> bool:
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    return dialect.name == "sqlite"


def time_bucket(bind: Connection | Dialect, column: Any, unit: str) -> ColumnElement[Any]:
    """Truncate a timestamp column to 'hour' or 'day', as a comparable value."""
    if unit not in ("hour", "day"):
        raise ValueError(f"unit must be hour or day, not {unit!r}")
    if is_sqlite(bind):
        fmt = "%Y-%m-%d %H:00:00" if unit == "hour" else "%Y-%m-%d 00:00:00"
        return func.strftime(fmt, column)
    return func.date_trunc(literal_column(f"'{unit}'"), column)


def escape_like(text: str, escape: str = "\\") -> str:
    """Escape LIKE wildcards so `text` matches literally (use with escape=escape)."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")
