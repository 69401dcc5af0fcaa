"""A page of rows from a server-side paged query, and one page over several queries shown one after another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Page", "Part", "page_of_parts"]


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


# one query of a list made of several: (offset, limit) -> (how many rows it has in all, its rows from offset);
# asked with a limit of 0 it only counts
Part = Callable[[int, int], tuple[int, list[dict[str, Any]]]]


def page_of_parts(parts: Sequence[Part], page: int, page_size: int) -> Page:
    """Page `page` of the parts' rows read one part after the other; the total counts every part's rows."""
    page, page_size = max(1, int(page)), max(1, int(page_size))
    skip, total = (page - 1) * page_size, 0
    rows: list[dict[str, Any]] = []
    for part in parts:
        count, got = part(max(skip - total, 0), page_size - len(rows))
        rows.extend(got)
        total += count
    return Page(rows, total, page, page_size)
