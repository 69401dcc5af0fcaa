"""CSV import of batch parameters: good files parse, bad ones are refused with a message naming the problem."""

from __future__ import annotations

import io

import pytest

from core.batches.csv_import import parse_csv, read_upload
from core.errors import ValidationError


def test_rows_parse_with_optional_turns():
    """Each data row becomes persona/emotion/topic, with turns when the column has a value."""
    rows = parse_csv(b"persona,emotion,topic,turns\nA student,curious,fractions,4\nA parent,calm,budgets,\n")
    assert rows == [{"persona": "A student", "emotion": "curious", "topic": "fractions", "turns": 4},
                    {"persona": "A parent", "emotion": "calm", "topic": "budgets"}]


def test_header_is_case_and_space_insensitive_and_bom_is_ignored():
    """An Excel-style UTF-8 file with a BOM and ' Persona ' headers still parses."""
    rows = parse_csv("\ufeff Persona ,EMOTION,topic\nx,y,z\n".encode())
    assert rows == [{"persona": "x", "emotion": "y", "topic": "z"}]


def test_missing_columns_are_named():
    """A file without an emotion or topic column is refused, naming both."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,mood\nx,y\n")
    assert exc.value.code == "missing_columns"
    assert "emotion" in exc.value.user_message and "topic" in exc.value.user_message


def test_invalid_utf8_is_refused_with_its_line():
    """Bytes that are not UTF-8 are refused with the line where they are."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic\nok,ok,ok\nbad\xff\xfe,x,y\n")
    assert exc.value.code == "invalid_encoding" and "line 3" in exc.value.user_message


def test_oversized_upload_is_refused_before_parsing():
    """A stream larger than the limit is refused after reading only limit+1 bytes."""
    stream = io.BytesIO(b"persona,emotion,topic\n" + b"x,y,z\n" * 100)
    with pytest.raises(ValidationError) as exc:
        read_upload(stream, max_bytes=64)
    assert exc.value.code == "upload_too_large" and stream.tell() == 65


def test_hundred_megabyte_file_is_refused_by_its_size(tmp_path):
    """A 100 MB file on disk is refused from its size alone (sparse file: nothing is read)."""
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    with pytest.raises(ValidationError) as exc:
        parse_csv(path)
    assert exc.value.code == "upload_too_large" and "MB" in exc.value.user_message


def test_empty_file_and_header_only_are_refused():
    """An empty file and a header without rows are both refused as empty."""
    for data in (b"", b"   \n", b"persona,emotion,topic\n\n"):
        with pytest.raises(ValidationError) as exc:
            parse_csv(data)
        assert exc.value.code == "empty_upload"


def test_too_many_rows_is_refused():
    """More rows than a batch may hold is refused with the limit in the message."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic\n" + b"a,b,c\n" * 4, max_rows=3)
    assert exc.value.code == "too_many_rows" and "3" in exc.value.user_message


def test_value_too_long_and_empty_value_name_line_and_column():
    """A too-long or empty value is refused naming its line and column."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic\na,b,c\na," + b"x" * 50 + b",c\n", max_value_chars=20)
    assert exc.value.code == "value_too_long" and "Line 3, column emotion" in exc.value.user_message
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic\na,,c\n")
    assert exc.value.code == "empty_value" and "column emotion" in exc.value.user_message


def test_non_numeric_turns_is_refused():
    """turns must be a whole number."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic,turns\na,b,c,six\n")
    assert exc.value.code == "invalid_turns"


def test_a_header_naming_a_column_twice_is_refused():
    """persona,emotion,topic,topic is refused naming topic: which of the two is meant cannot be guessed."""
    with pytest.raises(ValidationError) as exc:
        parse_csv(b"persona,emotion,topic,Topic\na,b,c,d\n")
    assert exc.value.code == "duplicate_columns" and "topic" in exc.value.user_message
