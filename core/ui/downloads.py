"""Downloads from a page, bounded: Streamlit keeps a download's whole file in server memory.

A page's download holds the rows up to settings.ui_download_max_mb (whole rows only) and says
so beside its button, naming the CLI export that streams any size to a file. A dataset download
(core.datasets.DatasetExport.archive) stops at the same `limit_bytes()`, whole rows only.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import streamlit as st

from core.config import get_settings

__all__ = ["capped", "limit_bytes", "limit_note"]


def limit_bytes() -> int:
    return get_settings().ui_download_max_mb * 1024 * 1024


def capped(chunks: Iterable[str], limit: int | None = None) -> bytes:
    """The chunks (whole rows or lines) as UTF-8, stopping before the one that would pass `limit` bytes."""
    return _fill(chunks, limit)[0]


def _fill(chunks: Iterable[str], limit: int | None) -> tuple[bytes, int, bool]:
    """The bytes, how many chunks they hold, and whether that is every chunk."""
    limit = limit_bytes() if limit is None else limit
    buf = io.BytesIO()
    written, complete = 0, True
    try:
        for chunk in chunks:
            data = chunk.encode("utf-8")
            if buf.tell() + len(data) > limit:
                complete = False
                break
            buf.write(data)
            written += 1
    finally:
        if isinstance(chunks, Iterator) and hasattr(chunks, "close"):
            chunks.close()  # the rest is never read: let the reader give its connection back now
    return buf.getvalue(), written, complete


def limit_note(cli: str) -> None:
    """Beside a download: how much it holds at most, and the command that exports everything."""
    st.caption(f"A download here holds at most {get_settings().ui_download_max_mb} MB (the first rows, whole); "
               f"for a bigger set run `{cli}`, which writes any size to a file.")
