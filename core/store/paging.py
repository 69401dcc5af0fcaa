"""A page of rows from a server-side paged query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Page"]


@dataclass(frozen=True)
class Page:
    """One page of results and the total number of matching rows."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))
