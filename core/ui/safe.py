"""Untrusted text on screen: Markdown that shows a value exactly as written, and nothing else.

Streamlit reads Markdown in far more places than `st.markdown`: captions, alerts, toasts,
expander and tab labels, metric labels, button and radio labels, progress text and `help=`
tooltips. A model reply, an upstream error message, a batch name, a persona or an id put
into any of them unescaped can load an image from any host (a tracking pixel), render a link
or a `:red[…]` directive, or start KaTeX; with `unsafe_allow_html` it can run script.

`literal(value)` is the one way to put such a value into any of those strings. It escapes
every ASCII punctuation character with a backslash (CommonMark allows that for all of them,
and Streamlit's directives and math honour it), keeps line breaks as hard
breaks and leading spaces as non-breaking ones (so nothing turns into a code block or a
heading), and cuts to `max_chars` *before* escaping, so a cut never splits an escape. GFM
turns URLs and e-mail addresses into links *after* escapes are read (a pass over the text
nodes), so an invisible word joiner (U+2060) goes inside each `:/`, after each `@` and between
`www` and `.`; the text reads the same, though a copy of it carries the joiner.
The output is inert HTML too: every `<` and `&` is a Markdown text character, so it stays text
even where raw HTML is allowed (tests/unit/test_ui_html_lint.py allows only constants and
this function there). It redacts first (core.redact), then cuts, then escapes: most rows are
redacted when they are written, but a conversation's turns are stored as the model wrote them
(they are the training data), so what is shown is redacted here, whatever its source.

There is deliberately no inline-code variant: a code span inside a directive or badge label
can be closed by a `]` in the value, and what follows it would be read as Markdown again.

`chart_text(value)` is its counterpart for chart labels (Vega-Lite), which are drawn as text.
"""

from __future__ import annotations

import re
from typing import Any

from core.markdown_text import cut as _cut
from core.markdown_text import escape
from core.redact import redact_text

__all__ = ["chart_text", "literal"]

_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)
_NBSP = "\u00a0"


def literal(value: Any, max_chars: int | None = None) -> str:
    """Markdown that Streamlit renders as exactly `value`'s text (None: empty), cut to `max_chars`."""
    if value is None:
        return ""
    text = _cut(redact_text(str(value)), max_chars).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = escape(text)  # core.markdown_text: the one escape, shared with the dataset card
    # indentation would make a code block, where escapes show as backslashes
    text = _LEADING_SPACE.sub(lambda m: _NBSP * len(m.group().expandtabs(4)), text)
    return text.replace("\n", "  \n")


def chart_text(value: Any, max_chars: int | None = None) -> str:
    """A Vega-Lite label or tooltip value (None: empty), redacted, cut to `max_chars` and otherwise as typed.

    Vega draws labels as SVG or canvas text and its tooltips escape HTML, so nothing in the
    value can open a tag; an escape here would show as `&lt;` on screen.
    """
    if value is None:
        return ""
    return _cut(redact_text(str(value)), max_chars)
