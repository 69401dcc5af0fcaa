"""No code outside tests hands Streamlit HTML that is not a constant or core.ui.safe.literal()'s output.

Checked on the syntax tree of every .py file of the project: a call with
`unsafe_allow_html=` anything but a constant False, or a call of `st.html` /
`components.html` (or a bare `html(...)` imported from it), must pass as its content a constant string, a `literal(...)` call, or an
f-string or `+` of those. Anything else (a name, an attribute, a formatted value) fails,
because nobody can see from the call site that it was escaped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.config import ROOT

HELPER = "literal"
_SKIP_DIRS = {".venv", "tests", ".git", "artifacts", "data", "node_modules", "build", "dist"}


def _is_safe(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        return name == HELPER
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) or (isinstance(v, ast.FormattedValue) and v.format_spec is None
                                                   and v.conversion == -1 and _is_safe(v.value))
                   for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_safe(node.left) and _is_safe(node.right)
    return False


def _content(call: ast.Call, keyword: str) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _is_html_sink(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):  # from streamlit.components.v1 import html
        return func.id == "html"
    if isinstance(func, ast.Attribute) and func.attr == "html":
        owner = func.value
        return (isinstance(owner, ast.Name) and owner.id in ("st", "components")) or (
            isinstance(owner, ast.Attribute) and owner.attr in ("v1", "components"))
    return False


def html_violations(source: str, filename: str = "<snippet>") -> list[str]:
    """Each call that renders HTML from something other than a constant or literal(): 'file:line: why'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        flag = next((k.value for k in node.keywords if k.arg == "unsafe_allow_html"), None)
        if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append(f"{filename}:{node.lineno}: unsafe_allow_html is not a constant")
                continue
            content = _content(node, "body")
            if content is None or not _is_safe(content):
                found.append(f"{filename}:{node.lineno}: unsafe_allow_html=True with content that is neither a "
                             f"constant nor {HELPER}(...)")
        elif _is_html_sink(node):
            content = _content(node, "body") or _content(node, "html")
            if content is None or not _is_safe(content):
                found.append(f"{filename}:{node.lineno}: HTML from content that is neither a constant nor "
                             f"{HELPER}(...)")
    return found


def _project_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if not _SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def test_the_project_renders_html_only_from_constants_or_the_escape_helper():
    """Every unsafe_allow_html=True and st.html in the code outside tests gets a constant or literal(...)."""
    files = _project_files()
    assert any(p.name == "Home.py" for p in files) and any("app_pages" in p.parts for p in files)
    problems = [v for p in files for v in html_violations(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("snippet", [
    'st.markdown(f"**{name}**", unsafe_allow_html=True)',
    'st.markdown(name, unsafe_allow_html=True)',
    'st.markdown(row["name"] + "<br>", unsafe_allow_html=True)',
    'st.markdown(f"{literal(a)} {b}", unsafe_allow_html=True)',
    'st.markdown(f"{literal(a)!r}", unsafe_allow_html=True)',
    'st.caption(body=text, unsafe_allow_html=True)',
    'col.markdown("<b>x</b>", unsafe_allow_html=allow)',
    'st.markdown(escape(a), unsafe_allow_html=True)',
    'st.html(page)',
    'components.html(f"<div>{x}</div>")',
    'st.components.v1.html(x)',
    'html(f"<p>{x}</p>")',
])
def test_the_checker_catches_untrusted_content(snippet):
    """A planted violation (a name, an f-string of one, a helper that is not literal) is reported."""
    assert html_violations(snippet)


@pytest.mark.parametrize("snippet", [
    'st.markdown("<small>fixed</small>", unsafe_allow_html=True)',
    'st.markdown(literal(name), unsafe_allow_html=True)',
    'st.markdown(safe.literal(name, max_chars=80), unsafe_allow_html=True)',
    'st.markdown(f"<b>{literal(a)}</b> · {literal(b)}", unsafe_allow_html=True)',
    'st.markdown("<b>" + literal(a) + "</b>", unsafe_allow_html=True)',
    'st.markdown(f"**{name}**")',
    'st.markdown(name, unsafe_allow_html=False)',
    'st.html("<hr>")',
    'html.escape(x)',
])
def test_the_checker_accepts_constants_and_the_helper(snippet):
    """Constants, literal(...) and f-strings built only from them pass; so does no HTML at all."""
    assert html_violations(snippet) == []


def test_the_checker_finds_a_violation_planted_in_a_file(tmp_path):
    """A page file with an unescaped name under unsafe_allow_html fails with its file and line."""
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\n\nname = st.query_params.get("batch")\n'
                    'st.markdown(f"<small>{name}</small>", unsafe_allow_html=True)\n', encoding="utf-8")
    assert html_violations(page.read_text(), "page.py") == [
        "page.py:4: unsafe_allow_html=True with content that is neither a constant nor literal(...)"]
