"""Nothing user-scoped is shared through Streamlit's caches: a cached function in the UI takes the viewer.

A cached function's result is shared by every session that calls it with the same arguments. One
that reads an owned table (batches, items, conversations, drafts, checkpoints, error rows, audit
events) must take the acting person as an argument (`viewer: Actor`) and run as them
(`with acting_as(viewer)`), so two people never share a result and each result is what its key's
person may see. The functions that read nothing of anyone's are listed in SAFE with the reason.
"""

from __future__ import annotations

import ast

from core.config import ROOT

_CACHES = {"cache_data", "cache_resource"}

# "file:function" -> why its result holds nothing of any one person's
SAFE = {
    "core/ui/shell.py:_startup": "once per process and database: migrates, applies saved settings (not owned by a "
                                 "person) and starts the background threads; it returns no rows of any table",
}


def _is_cache(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr in _CACHES


def _scoped(fn: ast.FunctionDef) -> bool:
    """Whether `fn` takes an Actor and runs its body as it."""
    viewers = {a.arg for a in fn.args.args if a.annotation is not None and ast.unparse(a.annotation) == "Actor"}
    return any(isinstance(n, ast.Call) and ast.unparse(n.func) == "acting_as"
               and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id in viewers for n in ast.walk(fn))


def cached_functions(source: str, filename: str) -> dict[str, bool]:
    """Each cached function of `source` as 'file:name' -> whether it is scoped to its viewer."""
    return {f"{filename}:{node.name}": _scoped(node) for node in ast.walk(ast.parse(source, filename))
            if isinstance(node, ast.FunctionDef) and any(_is_cache(d) for d in node.decorator_list)}


def _ui_cached() -> dict[str, bool]:
    files = [*(ROOT / "core" / "ui").glob("*.py"), *(ROOT / "app_pages").glob("*.py"), ROOT / "Home.py"]
    found: dict[str, bool] = {}
    for f in sorted(files):
        found.update(cached_functions(f.read_text(), str(f.relative_to(ROOT))))
    return found


def test_the_check_tells_a_scoped_cache_from_a_shared_one():
    """A cached function that takes an Actor and acts as it passes; one without, or that ignores it, does not."""
    source = '''
import streamlit as st
@st.cache_data(ttl=5)
def scoped(url: str, viewer: Actor) -> int:
    with acting_as(viewer):
        return 1
@st.cache_data
def shared(url: str) -> int:
    return 1
@st.cache_resource(show_spinner=False)
def ignores(url: str, viewer: Actor) -> int:
    return 1
def plain(viewer: Actor) -> int:
    return 1
'''
    assert cached_functions(source, "x.py") == {"x.py:scoped": True, "x.py:shared": False, "x.py:ignores": False}


def test_every_cached_function_in_the_ui_is_scoped_to_its_viewer_or_listed_as_safe():
    """Each st.cache_data / st.cache_resource function takes `viewer: Actor` and acts as it, or SAFE says why not."""
    cached = _ui_cached()
    unscoped = sorted(name for name, scoped in cached.items() if not scoped and name not in SAFE)
    assert unscoped == [], f"cached without the viewer (a person's rows would be shared): {unscoped}"
    assert cached, "no cached function found: the check reads the wrong files"


def test_the_safe_list_names_only_functions_that_exist_and_are_not_scoped():
    """A SAFE entry that no longer exists, or that is now scoped anyway, is removed rather than kept as cover."""
    cached = _ui_cached()
    assert sorted(n for n in SAFE if n not in cached or cached[n]) == []
