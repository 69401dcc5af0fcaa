"""Error codes: one enum, whose values are the strings the error log and the batch tables store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.errors import APIError, ErrorCode, ValidationError
from core.store.schema import batch_items, error_logs

ROOT = Path(__file__).resolve().parents[2]
# names that hold an error code (or an error's type, ErrorType) wherever they appear: keyword
# arguments, attributes, assignments
CODE_NAMES = {"code", "default_code", "error_code", "last_error_code", "error_type"}


def _holds_code(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in CODE_NAMES) or (
        isinstance(node, ast.Name) and node.id in CODE_NAMES)


def _strings(node: ast.expr | None) -> list[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [c for e in node.elts for c in _strings(e)]
    return []


def _code_positions(tree: ast.Module) -> dict[str, int]:
    """Where the module's own helpers and dataclasses take a code positionally, e.g. `_refuse(message, code)`."""
    positions: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
        elif isinstance(node, ast.ClassDef):
            names = [f.target.id for f in node.body if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)]
        else:
            continue
        if "code" in names:
            positions[node.name] = names.index("code")
    return positions


def literal_codes(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal given, assigned or compared as an error code."""
    tree = ast.parse(source)
    positions = _code_positions(tree)
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found += [c for k in node.keywords if k.arg in CODE_NAMES for c in _strings(k.value)]
            at = positions.get(node.func.id) if isinstance(node.func, ast.Name) else None
            if at is not None and at < len(node.args):
                found += _strings(node.args[at])
        elif isinstance(node, ast.arguments):
            args = [*node.posonlyargs, *node.args]
            found += [c for a, d in zip(args[len(args) - len(node.defaults):], node.defaults, strict=True)
                      if a.arg in CODE_NAMES for c in _strings(d)]
        elif isinstance(node, ast.Dict):
            found += [c for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value in CODE_NAMES for c in _strings(v)]
        elif isinstance(node, ast.Assign) and any(_holds_code(t) for t in node.targets):
            found += _strings(node.value)
        elif isinstance(node, ast.Compare) and any(_holds_code(s) for s in (node.left, *node.comparators)):
            found += [c for s in (node.left, *node.comparators) for c in _strings(s)]
    return sorted((c.lineno, c.value) for c in found)


def app_sources() -> list[Path]:
    return sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "app_pages").rglob("*.py"), ROOT / "Home.py"])


def test_the_literal_finder_sees_codes_given_assigned_and_compared() -> None:
    """The scan below would catch each way a code was written as a string before the enum."""
    source = (
        'raise APIError("m", code="rate_limited")\n'
        'default_code = "circuit_open"\n'
        'if err.code in ("spend_limit", "authentication_failed"): pass\n'
        'conn.execute(items.update().values(last_error_code="worker_lost"))\n'
        'def _refuse(message, code="invalid_input", field="csv"): pass\n'
        'raise _refuse("too big", "upload_too_large")\n'
        'row = {"error_code": "unrecordable", "component": "store"}\n'
        'ok = err.code == ErrorCode.RATE_LIMITED and _refuse("m", ErrorCode.EMPTY_UPLOAD, "csv")\n'
        'if err.error_type == "database": pass\n'
    )
    assert literal_codes(source) == [
        (1, "rate_limited"), (2, "circuit_open"), (3, "authentication_failed"), (3, "spend_limit"),
        (4, "worker_lost"), (5, "invalid_input"), (6, "upload_too_large"), (7, "unrecordable"), (9, "database")]


def test_no_module_writes_an_error_code_as_a_string_literal() -> None:
    """Every code the app creates or compares is an ErrorCode member, never a bare string."""
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
                 for path in app_sources() for line, text in literal_codes(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_an_error_made_with_a_code_that_is_not_a_member_fails() -> None:
    """A misspelt code is refused where the error is made, not found later in a query that matches nothing."""
    with pytest.raises(ValueError, match="rate_limitted"):
        APIError("429", code="rate_limitted")  # type: ignore[arg-type]


def test_a_member_and_its_stored_string_are_interchangeable() -> None:
    """Rows read back from the store (plain strings) compare equal to members, and members format as the string."""
    err = ValidationError("no such batch", code=ErrorCode("unknown_batch"))
    assert err.code is ErrorCode.UNKNOWN_BATCH and err.code == "unknown_batch"
    assert f"{err.code}" == "unknown_batch" and err.to_dict()["error_code"] == "unknown_batch"
    assert repr(err) == "ValidationError(code='unknown_batch', message='no such batch')"


def test_only_http_status_codes_are_open_ended() -> None:
    """`http_<status>` names a status without its own member; anything else outside the enum is refused."""
    assert ErrorCode("http_418") == "http_418"
    for wrong in ("http_", "http_41", "http_4180", "http_abc", "HTTP_418"):
        with pytest.raises(ValueError):
            ErrorCode(wrong)


def test_every_code_fits_the_columns_that_store_it() -> None:
    """No member is longer than error_logs.error_code or batch_items.last_error_code can hold."""
    width = min(error_logs.c.error_code.type.length, batch_items.c.last_error_code.type.length)
    assert max(len(code) for code in ErrorCode) <= width
