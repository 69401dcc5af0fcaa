"""A page's download stops at the size limit, on a whole row, and frees its reader."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from core.ui.downloads import capped, limit_bytes


def _rows(n: int, closed: list[bool]) -> Iterator[str]:
    try:
        yield "id,message\n"
        for i in range(n):
            yield f"{i},row number {i}\n"
    finally:
        closed.append(True)


def test_a_small_set_downloads_whole():
    """Under the limit every row is in the file."""
    closed: list[bool] = []
    data = capped(_rows(10, closed), limit=10_000)
    assert len(list(csv.reader(io.StringIO(data.decode())))) == 11


def test_a_big_set_stops_at_the_limit_on_a_whole_row():
    """A million rows give at most `limit` bytes, ending with a complete line, and the reader is closed."""
    closed: list[bool] = []
    data = capped(_rows(1_000_000, closed), limit=4_096)
    assert 4_000 < len(data) <= 4_096
    assert data.endswith(b"\n")
    last = data.decode().splitlines()[-1].split(",")
    assert last[1] == f"row number {last[0]}"
    assert closed == [True]


def test_the_limit_comes_from_the_settings(monkeypatch):
    """The default limit is the ui_download_max_mb setting in bytes."""
    from core.config import reload_settings

    monkeypatch.setenv("STUDIO_UI_DOWNLOAD_MAX_MB", "3")
    reload_settings()
    try:
        assert limit_bytes() == 3 * 1024 * 1024
    finally:
        monkeypatch.delenv("STUDIO_UI_DOWNLOAD_MAX_MB")
        reload_settings()
