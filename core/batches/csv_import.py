"""Parse an uploaded CSV of batch parameters: columns persona, emotion, topic, optional turns and custom variables.

Everything that is wrong is refused with a ValidationError naming the problem (and the
row and column where there is one) before a single row is written. The size limit is
checked before anything is parsed, so a 100 MB upload costs nothing but its length.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from core.config import get_settings
from core.errors import ErrorCode, ValidationError

__all__ = ["REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "parse_csv", "read_upload"]

REQUIRED_COLUMNS = ("persona", "emotion", "topic")
OPTIONAL_COLUMNS = ("turns",)

CsvSource = bytes | bytearray | str | Path | BinaryIO


def _refuse(message: str, code: ErrorCode, *, field: str = "csv") -> ValidationError:
    return ValidationError(message, code=code, field=field, user_message=message)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def read_upload(source: CsvSource, *, max_bytes: int | None = None) -> bytes:
    """The bytes of an upload (bytes, a path or a binary stream), refusing anything over the limit unread."""
    limit = get_settings().upload_max_bytes if max_bytes is None else max_bytes
    too_big = f"The file is larger than the {_mb(limit)} upload limit; split it into smaller files."
    if isinstance(source, bytes | bytearray):
        if len(source) > limit:
            raise _refuse(too_big, ErrorCode.UPLOAD_TOO_LARGE)
        return bytes(source)
    if isinstance(source, str | Path):
        path = Path(source)
        if os.path.getsize(path) > limit:
            raise _refuse(too_big, ErrorCode.UPLOAD_TOO_LARGE)
        with path.open("rb") as fh:
            return _read_capped(fh, limit, too_big)
    size = getattr(source, "size", None)  # Streamlit's UploadedFile knows its size
    if isinstance(size, int) and size > limit:
        raise _refuse(too_big, ErrorCode.UPLOAD_TOO_LARGE)
    return _read_capped(source, limit, too_big)


def _read_capped(stream: BinaryIO, limit: int, message: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _refuse(message, ErrorCode.UPLOAD_TOO_LARGE)
    return data


def parse_csv(
    source: CsvSource,
    *,
    max_bytes: int | None = None,
    max_rows: int | None = None,
    max_value_chars: int | None = None,
    variables: Sequence[str] = (),
) -> list[dict[str, str | int]]:
    """Rows of {"persona", "emotion", "topic"[, "turns"]}; ValidationError naming the first problem.

    `variables`: a template's custom variables, each an optional column too (an empty cell: its default).
    """
    settings = get_settings()
    max_rows = settings.batch_max_items if max_rows is None else max_rows
    max_chars = settings.csv_max_value_chars if max_value_chars is None else max_value_chars
    data = read_upload(source, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _refuse(
            f"The file is not valid UTF-8 text (invalid byte at line {line}); save it as UTF-8 (CSV UTF-8) "
            "and upload again.", ErrorCode.INVALID_ENCODING) from None
    if not text.strip():
        raise _refuse("The file is empty; it needs a header row (persona,emotion,topic) and at least one row.",
                      ErrorCode.EMPTY_UPLOAD)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _refuse(f"The header row cannot be read as CSV: {exc}.", ErrorCode.INVALID_CSV) from None
    columns = [h.strip().lower() for h in header]
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        # which of two "topic" columns is meant cannot be guessed; the first one used to win silently
        raise _refuse(f"The header row names {', '.join(repeated)} more than once; each column may appear only "
                      "once.", ErrorCode.DUPLICATE_COLUMNS)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(c for c in columns if c) or "none"
        raise _refuse(
            f"Missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. The header row must "
            f"name persona, emotion and topic (turns is optional); found: {found}.", ErrorCode.MISSING_COLUMNS)
    position = {name: columns.index(name) for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *variables)
                if name in columns}
    rows: list[dict[str, str | int]] = []
    try:
        for line_no, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            if len(rows) >= max_rows:
                raise _refuse(f"The file has more than {max_rows:,} rows, the most one batch may hold.",
                              ErrorCode.TOO_MANY_ROWS)
            rows.append(_row(record, position, line_no, max_chars, optional=frozenset(variables)))
    except csv.Error as exc:
        raise _refuse(f"Line {reader.line_num} is not valid CSV: {exc}.", ErrorCode.INVALID_CSV) from None
    if not rows:
        raise _refuse("The file has a header row but no data rows.", ErrorCode.EMPTY_UPLOAD)
    return rows


def _row(record: list[str], position: dict[str, int], line_no: int, max_chars: int,
         optional: frozenset[str] = frozenset()) -> dict[str, str | int]:
    row: dict[str, str | int] = {}
    for name, idx in position.items():
        value = record[idx].strip() if idx < len(record) else ""
        if len(value) > max_chars:
            raise _refuse(f"Line {line_no}, column {name}: the value is {len(value):,} characters long; "
                          f"the limit is {max_chars:,}.", ErrorCode.VALUE_TOO_LONG, field=name)
        if name == "turns":
            if value == "":
                continue
            try:
                row["turns"] = int(value)
            except ValueError:
                raise _refuse(f"Line {line_no}, column turns: {value[:40]!r} is not a whole number.",
                              ErrorCode.INVALID_TURNS, field="turns") from None
            continue
        if not value and name in optional:
            continue
        if not value:
            raise _refuse(f"Line {line_no}, column {name}: the value is empty.", ErrorCode.EMPTY_VALUE, field=name)
        row[name] = value
    return row
