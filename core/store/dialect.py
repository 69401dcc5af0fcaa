"""The one small place where SQLite and Postgres differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, select, table
from sqlalchemy.engine import Connection, Dialect, Engine

__all__ = ["is_sqlite", "time_bucket", "escape_like", "contains_text", "FTS_MIN_CHARS"]

# FTS5's trigram tokenizer can only look up strings of at least three characters.
FTS_MIN_CHARS = 3


def is_sqlite(bind: Connection | Engine | Dialect) -> bool:
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    return dialect.name == "sqlite"


def time_bucket(bind: Connection | Engine | Dialect, column: Any, unit: str) -> ColumnElement[Any]:
    """Truncate a timestamp column to the UTC 'hour' or 'day', as a comparable value.

    SQLite stores UtcDateTime as ISO text, so a prefix of the text is the bucket (cheaper per
    row than strftime); Postgres truncates in UTC whatever the session's time zone is.
    """
    if unit not in ("hour", "day"):
        raise ValueError(f"unit must be hour or day, not {unit!r}")
    if is_sqlite(bind):
        return func.substr(column, 1, 13 if unit == "hour" else 10)
    return func.date_trunc(literal_column(f"'{unit}'"), func.timezone("UTC", column))


def escape_like(text: str, escape: str = "\\") -> str:
    """Escape LIKE wildcards so `text` matches literally (use with escape=escape)."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def contains_text(
    bind: Connection | Engine | Dialect, column: Any, needle: str, *, fts_table: str | None = None
) -> ColumnElement[bool]:
    """Case-insensitive "column contains needle", literally (no wildcard or regex meaning).

    Postgres: ILIKE with escaped wildcards (a pg_trgm GIN index serves it). SQLite: LIKE
    (ASCII case folding); when `fts_table` (an FTS5 trigram index over `column`, rowid = the
    row's integer key) is given and the needle is long enough, the rows come from the index.
    LIKE ... ESCAPE cannot use the FTS5 index, so the index is asked with a MATCH on the
    needle as one quoted phrase (quotes doubled) and LIKE rechecks the candidates exactly.
    """
    pattern = f"%{escape_like(needle)}%"
    if not is_sqlite(bind):
        return column.ilike(pattern, escape="\\")
    like = column.like(pattern, escape="\\")
    if fts_table is None or len(needle) < FTS_MIN_CHARS:
        return like
    phrase = '"' + needle.replace('"', '""') + '"'
    match = literal_column(fts_table).op("MATCH")(bindparam("fts_phrase", phrase, unique=True))
    candidates = select(literal_column("rowid")).select_from(table(fts_table)).where(match)
    key = column.table.primary_key.columns.values()[0]
    return and_(key.in_(candidates), like)
