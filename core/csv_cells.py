"""Cells of the CSV files people open in spreadsheets: one helper for every export.

A cell that a spreadsheet could read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return) is prefixed with a single quote, and NUL bytes are dropped (spreadsheets and
many CSV readers stop at them, which hides the rest of the row).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """One cell as text: NULs dropped, quoted against spreadsheet formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text
