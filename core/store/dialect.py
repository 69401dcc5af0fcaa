"""The one small place where SQLite and Postgres differ."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine

__all__ = ["is_sqlite", "time_bucket", "escape_like", "contains_text", "count_text_matches", "bulk_insert",
           "json_array_has", "FTS_PROBE_MIN_MATCHES", "FTS_MIN_CHARS"]

# SQLite's default bound-variable limit is 32766; stay below it with room to spare
SQLITE_MAX_VARIABLES = 30_000
SQLITE_ROWS_PER_INSERT = 500
# From this many text matches on, a page is found faster by walking the time index and probing
# the match list than by fetching every match and sorting (SQLite; see contains_text).
FTS_PROBE_MIN_MATCHES = 2000
# FTS5's trigram tokenizer can only look up strings of at least three characters.
FTS_MIN_CHARS = 3


def is_sqlite(bind: Connection | Engine | Dialect) -> bool:
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    return dialect.name == "sqlite"


def time_bucket(bind: Connection | Engine | Dialect, column: Any, unit: str) -> ColumnElement[Any]:
    """Truncate a timestamp column to the UTC 'minute', 'hour' or 'day', as a comparable value.

    SQLite stores UtcDateTime as ISO text, so a prefix of the text is the bucket (cheaper per
    row than strftime); Postgres truncates in UTC whatever the session's time zone is.
    """
    prefix = {"minute": 16, "hour": 13, "day": 10}.get(unit)
    if prefix is None:
        raise ValueError(f"unit must be minute, hour or day, not {unit!r}")
    if is_sqlite(bind):
        return func.substr(column, 1, prefix)
    return func.date_trunc(literal_column(f"'{unit}'"), func.timezone("UTC", column))


def json_array_has(bind: Connection | Engine | Dialect, column: Any, element: dict[str, str | bool]
                   ) -> ColumnElement[bool]:
    """Whether the JSON array in `column` holds an object with (at least) the fields of `element`.

    Postgres: jsonb containment of `[element]`. SQLite: an element of json_each whose fields
    equal the values (json_extract gives true/false as 1/0).
    """
    if not is_sqlite(bind):
        wanted = bindparam("json_element", json.dumps([element]), type_=String(), unique=True)
        return cast(column, JSONB).op("@>")(cast(wanted, JSONB))
    each = func.json_each(column).table_valued("value")
    fields = [func.json_extract(each.c.value, f"$.{name}") == (int(v) if isinstance(v, bool) else v)
              for name, v in element.items()]
    return select(literal_column("1")).select_from(each).where(*fields).exists()


def escape_like(text: str, escape: str = "\\") -> str:
    """Escape LIKE wildcards so `text` matches literally (use with escape=escape)."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def contains_text(
    bind: Connection | Engine | Dialect, column: Any, needle: str, *, fts_table: str | None = None,
    probe: bool = False,
) -> ColumnElement[bool]:
    """Case-insensitive "column contains needle", literally (no wildcard or regex meaning).

    Postgres: ILIKE with escaped wildcards (a pg_trgm GIN index serves it). SQLite: when
    `fts_table` (an FTS5 trigram index over `column`, rowid = the row's integer key) is given
    and the needle has at least three characters, the index answers alone: the needle as one
    quoted phrase (quotes doubled) is the run of its trigrams, i.e. the substring, case-folded
    like ILIKE. (LIKE ... ESCAPE cannot use an FTS5 index at all.) Shorter needles, or no
    index: LIKE with escaped wildcards (ASCII case folding).

    `probe`: for many matches (see FTS_PROBE_MIN_MATCHES), hide the key from SQLite's planner
    so a page walks the time index and probes the match list, instead of fetching every
    match by key and sorting them all.
    """
    pattern = f"%{escape_like(needle)}%"
    if not is_sqlite(bind):
        return column.ilike(pattern, escape="\\")
    if fts_table is None or len(needle) < FTS_MIN_CHARS:
        return column.like(pattern, escape="\\")
    candidates = _fts_candidates(fts_table, needle)
    key = column.table.primary_key.columns.values()[0]
    return (key + 0 if probe else key).in_(candidates)


def _fts_candidates(fts_table: str, needle: str) -> Any:
    phrase = '"' + needle.replace('"', '""') + '"'
    match = literal_column(fts_table).op("MATCH")(bindparam("fts_phrase", phrase, unique=True))
    return select(literal_column("rowid")).select_from(table(fts_table)).where(match)


def count_text_matches(bind: Connection | Engine | Dialect, needle: str, *, fts_table: str) -> Any | None:
    """A statement counting rows that contain `needle`, answered by the text index alone, or None.

    Only SQLite's FTS5 index can count without visiting the rows (for needles of three or more
    characters); elsewhere the caller counts with `contains_text` as usual.
    """
    if not is_sqlite(bind) or len(needle) < FTS_MIN_CHARS:
        return None
    return select(func.count()).select_from(_fts_candidates(fts_table, needle).subquery())


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def bulk_insert(conn: Connection, target: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert many rows fast, inside `conn`'s transaction; values are Python values per `columns`.

    Each value goes through its column type's bind processing (the same conversion a Core
    insert does), then to the driver directly: COPY on Postgres; on SQLite multi-row INSERT
    statements, because FTS5 flushes its pending index at every statement its trigger runs
    in, so executemany (one statement per row) makes the trigram index ~10x slower.
    Returns the number of rows written.
    """
    dialect = conn.dialect
    cols = [target.c[name] for name in columns]
    procs = []
    for i, col in enumerate(cols):
        if isinstance(col.type, Boolean):
            continue  # both drivers take Python bools as they are; skipping saves a call per value
        if isinstance(col.type, JSON):
            # psycopg adapts JSON per statement; COPY takes the text
            proc = col.type.bind_processor(dialect) or _json_text
        else:
            # the dialect's own type: SQLite's DATETIME writes the text a Core insert writes
            # ('... 12:00:00.000000'); the generic DateTime left that to sqlite3's adapter,
            # which drops a zero fraction, and '12:00:00' sorts before '12:00:00.000000'
            proc = col.type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None:
            procs.append((i, proc))

    def converted() -> Iterator[list[Any]]:
        for row in rows:
            values = list(row)
            for i, proc in procs:
                values[i] = proc(values[i])
            yield values

    names = ", ".join(columns)
    count = 0
    if is_sqlite(conn):
        per_statement = max(1, min(SQLITE_ROWS_PER_INSERT, SQLITE_MAX_VARIABLES // len(cols)))
        one = "(" + ", ".join("?" * len(cols)) + ")"
        full_sql = f"INSERT INTO {target.name} ({names}) VALUES " + ", ".join([one] * per_statement)
        pending: list[Any] = []
        for values in converted():
            pending.extend(values)
            count += 1
            if count % per_statement == 0:
                conn.exec_driver_sql(full_sql, tuple(pending))
                pending.clear()
        if pending:
            n = len(pending) // len(cols)
            conn.exec_driver_sql(f"INSERT INTO {target.name} ({names}) VALUES " + ", ".join([one] * n),
                                 tuple(pending))
        return count
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {target.name} ({names}) FROM STDIN") as copy:
        for values in converted():
            copy.write_row(values)
            count += 1
    return count
