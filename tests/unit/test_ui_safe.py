"""literal() turns untrusted text into Markdown that shows it exactly; chart_text() cuts chart labels, which Vega draws as text.

The check below reads the output the way a CommonMark parser reads text: a backslash before
ASCII punctuation is that character, and any other ASCII punctuation character is markup.
Every punctuation character of literal()'s output must be escaped, and undoing the escapes
must give back the input. How Streamlit then draws it is checked in the browser
(tests/e2e/test_browser_untrusted.py).
"""

from __future__ import annotations

import re
import string

import pytest

from core.ui.safe import chart_text, literal

WORD_JOINER = "\u2060"

HOSTILE = [
    '<img src="http://evil.invalid/x.png">',
    "![x](http://evil.invalid/p.png)",
    "[click](javascript:alert(1))",
    ":red[boom]",
    ":red-badge[fake]",
    "$\\alpha$ and $$x^2$$",
    "<script>alert(1)</script>",
    '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>',
    "<form><input type=password></form>",
    "&amp; &lt;b&gt; &#60;script&#62;",
    "https://evil.invalid/auto www.evil.invalid a@evil.invalid",
    "# heading\n---\n> quote\n1. item\n- item\n| a | b |\n|---|---|",
    "    indented code\n\ttabbed",
    "`code` **bold** _it_ ~~strike~~ \\*escaped\\*",
    ":material/warning: :smile:",
]


def _unescape(markdown: str) -> str:
    """What a CommonMark parser makes of `markdown` if it is only text; fails on any unescaped markup."""
    out: list[str] = []
    i = 0
    while i < len(markdown):
        ch = markdown[i]
        if ch == "\\":
            assert i + 1 < len(markdown) and markdown[i + 1] in string.punctuation, (
                f"bare backslash at {i}: {markdown[i:i + 10]!r}")
            out.append(markdown[i + 1])
            i += 2
            continue
        assert ch not in string.punctuation, f"unescaped {ch!r} at {i}: {markdown[max(i - 10, 0):i + 10]!r}"
        out.append(ch)
        i += 1
    return "".join(out).replace("  \n", "\n").replace(WORD_JOINER, "")


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markup_character_is_escaped_and_the_text_comes_back(text):
    """Markup, images, links, directives, math, entities and block syntax are all escaped, and nothing is lost."""
    out = literal(text)
    assert "\n" not in out.replace("  \n", "")  # every line break is a hard break, never a new block
    indented = re.sub(r"^[ \t]+", lambda m: m.group().expandtabs(4), text, flags=re.MULTILINE)
    assert _unescape(out).replace("\u00a0", " ") == indented


def test_an_image_or_link_cannot_form():
    """No `![`, `](` or `<` survives unescaped, so no image loads and no link or tag renders."""
    out = literal('![x](http://evil.invalid/p.png) [a](javascript:alert(1)) <img src=x>')
    for markup in ("![", "](", " <", ":/"):
        assert markup not in out
    assert out.startswith(r"\!\[x\]\(http\:" + WORD_JOINER + r"\/\/evil\.invalid")


@pytest.mark.parametrize("text", ["http://evil.invalid/p", "HTTPS://evil.invalid", "see www.evil.invalid now",
                                  "mail a@evil.invalid", "WWW.EVIL.INVALID"])
def test_urls_and_addresses_cannot_become_links(text):
    """GFM links bare URLs and e-mail addresses after reading escapes; a word joiner breaks each pattern."""
    shown = _unescape(literal(text))  # what GFM's autolink pass sees, minus the joiners
    assert shown == text
    seen = literal(text).replace("\\", "")
    assert not re.search(r"https?://|www\.|@\w", seen, re.IGNORECASE)


def test_a_directive_and_math_are_escaped():
    """`:red[boom]` and `$x$` keep their colon, brackets and dollars as escaped text."""
    assert literal(":red[boom]") == r"\:red\[boom\]"
    assert literal("$x$") == r"\$x\$"


def test_html_entities_show_as_written():
    """`&amp;` is shown as the five characters `&amp;`, not decoded to `&`."""
    assert literal("&amp;") == r"\&amp\;"


def test_leading_spaces_cannot_start_a_code_block():
    """Indentation becomes non-breaking spaces, so the text stays a paragraph with its escapes applied."""
    out = literal("first\n\n    four spaces")
    assert "\n    " not in out
    assert out.endswith("\u00a0" * 4 + "four spaces")


def test_none_is_empty_and_numbers_are_text():
    """None shows nothing; other values show as their str()."""
    assert literal(None) == ""
    assert literal(12.5) == r"12\.5"


def test_a_cut_comes_before_the_escape():
    """Cut to max_chars first, so the cut never splits an escape; the ellipsis marks it."""
    out = literal("a*" * 100, max_chars=11)
    assert _unescape(out) == "a*a*a*a*a*…"
    assert not out.endswith("\\")


def test_a_very_long_string_is_escaped_whole():
    """A megabyte of hostile text is escaped with nothing lost (its speed is a benchmark's, not a test's)."""
    text = "<img src=x>:red[b]$m$ " * 50_000
    assert _unescape(literal(text)) == text


def test_chart_text_keeps_html_as_typed_for_vega_which_draws_it_as_text():
    """Vega draws a label as text, so `<a href>` is passed on as typed (an entity would show as `&lt;`)."""
    assert chart_text('<a href="http://evil.invalid">x</a>') == '<a href="http://evil.invalid">x</a>'
    assert chart_text(None) == ""
    assert chart_text("x" * 10, max_chars=4) == "xxx…"


def test_a_key_in_a_shown_value_is_redacted_before_it_is_cut_and_escaped():
    """A model reply holding a key (turns are stored as written) shows the key as [REDACTED], never in part."""
    from core.ui.safe import chart_text, literal

    key = "sk-ant-api03-" + "x" * 40
    shown = literal(f"use {key} now")
    assert "x" * 10 not in shown and "REDACTED" in shown
    assert "x" * 10 not in literal(f"use {key}", max_chars=30)
    assert "x" * 10 not in chart_text(f"label {key}")
