"""The pages call services: no code in core/ui, app_pages/ or Home.py touches the store, HTTP or Streamlit's internals.

Checked on the syntax tree of each file: an import of SQLAlchemy, of the store's tables,
transactions or dialect helpers, of an HTTP client, or of a private or `runtime` part of
Streamlit fails; so does a call of `.execute`, `.exec_driver_sql`, `.connect` or `.begin`
(a query run from the page). The store's own services stay allowed (get_engine, migrate, ping): a page hands the
engine to a service, it does not use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.config import ROOT

_BANNED_MODULES = ("sqlalchemy", "core.store.schema", "core.store.tx", "core.store.dialect", "core.store.engine",
                   "core.store.resumable", "core.store.paging", "urllib", "http", "httpx", "requests",
                   "streamlit.runtime")
_ALLOWED_FROM_STORE = {"get_engine", "migrate", "ping", "utcnow"}  # services of the store itself
_QUERY_CALLS = {"execute", "exec_driver_sql", "connect", "begin", "scalars", "scalar"}


def _banned(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _BANNED_MODULES)


def _private(module: str) -> bool:
    return module.split(".")[0] == "streamlit" and any(part.startswith("_") for part in module.split("."))


def store_violations(source: str, filename: str = "<snippet>") -> list[str]:
    """Each import or call by which UI code reaches the store, HTTP or Streamlit internals: 'file:line: why'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _banned(alias.name) or _private(alias.name):
                    found.append(f"{where}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if _banned(mod) or _private(mod):
                found.append(f"{where}: imports from {mod}")
            elif mod == "core.store" and {a.name for a in node.names} - _ALLOWED_FROM_STORE:
                found.append(f"{where}: imports {sorted({a.name for a in node.names} - _ALLOWED_FROM_STORE)} "
                             "from core.store")
            elif mod.split(".")[0] == "streamlit" and any(a.name.startswith("_") for a in node.names):
                found.append(f"{where}: imports a private name from {mod}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _QUERY_CALLS:
            found.append(f"{where}: calls .{node.func.attr}() (a query belongs in a service)")
    return found


def _ui_files() -> list[Path]:
    return sorted([*(ROOT / "core" / "ui").glob("*.py"), *(ROOT / "app_pages").glob("*.py"), ROOT / "Home.py"])


def test_no_ui_file_touches_the_store_http_or_streamlit_internals():
    """Every page and view module reaches data only through services."""
    found = [v for path in _ui_files()
             for v in store_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == []


@pytest.mark.parametrize("snippet", [
    "from sqlalchemy import select",
    "import sqlalchemy as sa",
    "from core.store.schema import conversations",
    "from core.store.tx import write_tx",
    "from core.store import get_engine, metadata",
    "import urllib.request",
    "from streamlit.runtime.scriptrunner_utils.exceptions import StopException",
    "from streamlit.elements import _private_thing",
    "with engine.connect() as conn:\n    conn.execute(q)",
])
def test_each_way_into_the_store_is_caught(snippet):
    """A query, a store import, an HTTP client or a Streamlit internal in a snippet is reported."""
    assert store_violations(snippet)


@pytest.mark.parametrize("snippet", [
    "from core.store import get_engine",
    "from core import conversations as convs\nconvs.get_conversation(get_engine(), cid)",
    "import streamlit as st\nst.fragment(run_every=1)",
])
def test_calling_a_service_passes(snippet):
    """Handing the engine to a service and public Streamlit calls are not reported."""
    assert store_violations(snippet) == []
