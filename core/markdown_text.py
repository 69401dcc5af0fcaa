"""Untrusted text as Markdown that reads as exactly that text: the one escape behind the UI and the dataset card.

`escape(text)` backslash-escapes every ASCII punctuation character (CommonMark allows it for all of
them; Streamlit's directives and math honour it) and puts an invisible word joiner (U+2060) where
GFM's autolink pass would start a link (inside each `:/`, after each `@`, between `www` and `.`),
since that pass runs after escapes are read. The output is inert as HTML too: every `<` and `&` is
a Markdown text character, so nothing opens a tag or an entity even where raw HTML is allowed.

`core.ui.safe.literal` builds on it for the screen (line breaks kept as hard breaks);
`one_line` for a Markdown file's table cells and headings (core.datasets' card), where a line
break would end the row. Neither redacts: rows are redacted when they are written.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ELLIPSIS", "cut", "escape", "one_line"]

# every ASCII punctuation character: CommonMark lets any of them be backslash-escaped
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
_WORD_JOINER = "\u2060"
# where GFM's autolink pass would start a link: "http://", "www.", "name@host"
_LINKABLE = re.compile(r"(?<=:)(?=/)|(?<=@)|(?<=www)(?=\.)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
ELLIPSIS = "…"


def cut(text: str, max_chars: int | None) -> str:
    """`text` at most `max_chars` long, an ellipsis standing for what was cut (None: whole)."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS


def escape(text: str) -> str:
    """`text` with every Markdown-active character escaped and no autolink left to form."""
    return _PUNCTUATION.sub(r"\\\1", _LINKABLE.sub(_WORD_JOINER, text))


def one_line(value: Any, max_chars: int | None = None) -> str:
    """`value` (None: empty) as the text of one Markdown line or table cell: whitespace runs made one space, cut, escaped."""
    if value is None:
        return ""
    text = _SPACES.sub(" ", str(value).replace("\x00", "")).strip()
    return escape(cut(text, max_chars))
