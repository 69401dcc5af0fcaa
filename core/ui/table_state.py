"""One owner of a table's state: filters → page → selection.

A table's state lives in session state under its key: the filter signature it was last shown with,
the page, and a generation number that names its grid widget. A new signature sends the table back
to page 1 and starts a new generation, so the grid comes back with nothing selected; so does moving
to another page, or the same page showing other rows. A selection is the id of the row that sits at
the selected position in this run's rows, never a position kept across reruns, and it counts as a
click only in the run right after a person made it.

A list drawn as cards rather than a grid selects with a button: `choose(id)` keeps the id, `chosen(ids)`
gives it back while that row is among this run's rows, and a new signature or page drops it as it
drops a grid's selection. `footer` is the compact pager with the true total under such a list.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pandas as pd
import streamlit as st

from core.wording import counted

__all__ = ["Paged", "Selection", "TableState", "page_count", "span"]

_UNSET = object()


class Paged(Protocol):
    """What a service's page of rows tells the table (core.store.paging.Page has it)."""

    @property
    def total(self) -> int: ...
    @property
    def page(self) -> int: ...
    @property
    def page_size(self) -> int: ...
    @property
    def pages(self) -> int: ...


P = TypeVar("P", bound=Paged)


def page_count(total: int, page_size: int) -> int:
    """Pages needed for `total` rows (at least one, so an empty result is "page 1 of 1")."""
    return max(1, -(-max(total, 0) // max(page_size, 1)))


def span(page: Paged, noun: str) -> str:
    """What a page shows of how many: "21–40 of 1,234 drafts"; "3 drafts" when one page holds them all."""
    if page.pages <= 1:
        return counted(page.total, noun)
    first = (page.page - 1) * page.page_size + 1
    last = min(page.page * page.page_size, page.total)
    return f"{first:,}–{last:,} of {counted(page.total, noun)}"


@dataclass(frozen=True)
class Selection:
    """The selected row's id (None for none) and whether a person selected it just now."""

    id: str | None = None
    clicked: bool = False


class TableState:
    """The page and selected id of the table `key`, reset whenever `signature` (its filters) changes."""

    def __init__(self, key: str, signature: Hashable) -> None:
        self.key = key
        if st.session_state.get(self._k("signature"), _UNSET) != signature:
            st.session_state[self._k("signature")] = signature
            st.session_state[self._k("page")] = 1
            self._new_generation()

    def _k(self, name: str) -> str:
        return f"{self.key}.{name}"

    def _new_generation(self) -> None:
        """A grid under a new key: the browser's selection of the old one is dropped with it."""
        st.session_state[self._k("generation")] = int(st.session_state.get(self._k("generation"), 0)) + 1
        st.session_state.pop(self._k("seen"), None)
        st.session_state.pop(self._k("chosen"), None)

    @property
    def page(self) -> int:
        return int(st.session_state.get(self._k("page"), 1))

    def go_to(self, page_no: int) -> None:
        """Show page `page_no` (from 1) with nothing selected; usable as a button's callback."""
        page_no = max(1, int(page_no))
        if page_no != self.page:
            st.session_state[self._k("page")] = page_no
            self._new_generation()

    def clamp(self, total: int, page_size: int) -> int:
        """The page to show for `total` rows: the current one, or the last if the result shrank below it."""
        pages = page_count(total, page_size)
        if self.page > pages:
            self.go_to(pages)
        return self.page

    def load(self, fetch: Callable[[int], P]) -> P:
        """`fetch(page)` for the current page, fetched again at the last page if the filters left fewer."""
        page = fetch(self.page)
        if self.clamp(page.total, page.page_size) != page.page:
            page = fetch(self.page)
        return page

    def grid(self, frame: pd.DataFrame, ids: Sequence[str], **kwargs: Any) -> Selection:
        """Show `frame` (whose rows have the ids `ids`, in order) as a single-row-select grid; its selection."""
        shown = tuple(ids)
        if st.session_state.get(self._k("shown")) != shown:
            # other rows at the same positions: a position selected before now names another row
            st.session_state[self._k("shown")] = shown
            self._new_generation()
        widget = self._k(f"grid{st.session_state[self._k('generation')]}")
        event = st.dataframe(frame, key=widget, on_select="rerun", selection_mode="single-row", **kwargs)
        rows = list(event.selection.rows) if event is not None and hasattr(event, "selection") else []
        selected = shown[rows[0]] if rows and 0 <= rows[0] < len(shown) else None
        clicked = selected is not None and st.session_state.get(self._k("seen")) != selected
        st.session_state[self._k("seen")] = selected
        return Selection(selected, clicked)

    def choose(self, row_id: str | None) -> None:
        """Select the row `row_id` with a button (a list of cards has no grid); usable as a callback."""
        st.session_state[self._k("chosen")] = row_id

    def chosen(self, ids: Sequence[str]) -> str | None:
        """The id `choose` selected, while that row is among `ids` (this run's rows); else None."""
        picked = st.session_state.get(self._k("chosen"))
        return picked if picked is not None and picked in ids else None

    def footer(self, page: Paged, noun: str, *, prefix: str) -> None:
        """Under a list: how many of how many it shows, with Previous / Next when there is more than one page."""
        if page.pages > 1:
            self.pager(page, prefix=prefix, caption=f"{span(page, noun)} · page {page.page:,} of {page.pages:,}",
                       compact=True)
        elif page.total:
            st.caption(span(page, noun))

    def pager(self, page: Paged, *, prefix: str, caption: str, compact: bool = False) -> None:
        """First / Previous / Next / Last, a page to jump to, and `caption`; `compact` (a narrow column): only
        Previous and Next. Widget keys start with `prefix`."""
        first, last = page.page <= 1, page.page >= page.pages
        if compact:
            c2, c3, c6 = st.columns([1.3, 1, 2.5], vertical_alignment="center")
        else:
            c1, c2, c3, c4, c5, c6 = st.columns([1, 1, 1, 1, 1.4, 3], vertical_alignment="bottom")
            c1.button("First", key=f"{prefix}first", disabled=first, icon=":material/first_page:",
                      on_click=self.go_to, args=(1,))
            c4.button("Last", key=f"{prefix}last", disabled=last, icon=":material/last_page:",
                      on_click=self.go_to, args=(page.pages,))
            jump = f"{prefix}jump_{page.page}_{page.pages}"
            c5.number_input("Go to page", min_value=1, max_value=page.pages, value=page.page, step=1, key=jump,
                            on_change=lambda: self.go_to(min(int(st.session_state.get(jump) or 1), page.pages)))
        c2.button("Previous", key=f"{prefix}prev", disabled=first, icon=":material/chevron_left:",
                  on_click=self.go_to, args=(page.page - 1,))
        c3.button("Next", key=f"{prefix}next", disabled=last, icon=":material/chevron_right:",
                  on_click=self.go_to, args=(page.page + 1,))
        c6.caption(caption)
