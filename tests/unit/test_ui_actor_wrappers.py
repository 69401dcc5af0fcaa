"""Fragments and dialogs act as the session's person: the UI makes them through core.ui.boundaries, never directly.

A fragment's (or dialog's) own rerun does not run Home.py, so nothing there sets the actor: with
sign-in configured, one made with st.fragment / st.dialog would act as nobody and show nothing.
"""

from __future__ import annotations

import ast

from core.config import ROOT

_WRAPPED = {"fragment", "dialog"}
_ALLOWED = {ROOT / "core" / "ui" / "boundaries.py"}  # where the wrappers themselves call Streamlit's


def direct_uses(source: str, filename: str = "<snippet>") -> list[str]:
    """Each `st.fragment` / `st.dialog` (or `streamlit.fragment`) in `source`: 'file:line: st.X'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.Attribute) and node.attr in _WRAPPED and isinstance(node.value, ast.Name)
                and node.value.id in ("st", "streamlit")):
            found.append(f"{filename}:{node.lineno}: st.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "streamlit":
            found += [f"{filename}:{node.lineno}: from streamlit import {a.name}" for a in node.names
                      if a.name in _WRAPPED]
    return found


def test_the_check_finds_a_direct_fragment_and_dialog():
    """A decorator, a call and an import of Streamlit's own fragment or dialog are each found."""
    source = ("import streamlit as st\nfrom streamlit import dialog\n@st.fragment(run_every=2)\ndef f(): pass\n"
              "st.dialog('x')(f)\n")
    assert [u.split(": ", 1)[1] for u in direct_uses(source)] == ["from streamlit import dialog", "st.fragment",
                                                                  "st.dialog"]


def test_no_page_or_view_makes_a_fragment_or_dialog_directly():
    """core/ui, app_pages/ and Home.py use core.ui.boundaries.fragment / dialog, which act as the session's person."""
    files = [*(ROOT / "core" / "ui").glob("*.py"), *(ROOT / "app_pages").glob("*.py"), ROOT / "Home.py"]
    found = [u for f in sorted(files) if f not in _ALLOWED for u in direct_uses(f.read_text(), str(f.relative_to(ROOT)))]
    assert found == [], found
