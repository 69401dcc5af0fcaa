"""Turn a recorded error into an `error_logs` row: redacted, JSON-safe, within column limits.

This is the expensive part of recording (redaction, traceback formatting, JSON sizing); it runs
on the writer thread, never in the caller. Every string that reaches a row passed through
`core.redact` here, so nothing unredacted is stored, spooled or shown.
"""

from __future__ import annotations

import json
import math
import re
import traceback
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import String

from core.errorlog.fingerprint import fingerprint
from core.errors import AppError, ErrorCode, ErrorType
from core.redact import REDACTED, Scrubber, cut, is_sensitive_key, redact_text, secrets_under_keys
from core.store.schema import error_logs

__all__ = ["Pending", "build_row", "json_safe"]

# Column widths from the schema, so a long component or request id is cut, never rejected
# by Postgres (which would fail the whole batch).
_WIDTHS: dict[str, int] = {
    col.name: col.type.length for col in error_logs.columns if isinstance(col.type, String) and col.type.length
}
# Integer columns are 32-bit on Postgres.
_INT32 = (-(2**31), 2**31 - 1)
# Guards for pathological context: deeper or wider data is summarised, not walked.
_MAX_DEPTH = 8
_MAX_ITEMS = 200
# Type tuples built once: `isinstance(v, a | b)` builds a union object on every call, and
# json_safe runs for every value of every context on the writer thread.
_PLAIN = (bool, int)
_SEQUENCES = (list, tuple, set, frozenset)
_BYTES = (bytes, bytearray)


class Pending(NamedTuple):
    """What the caller hands to the writer: cheap to build, processed later."""

    seq: int
    error_id: str
    created_at: datetime
    error: AppError
    original: Any  # what record() was given (exception or not), for the traceback
    component: str
    context: dict[str, Any] | None
    request_id: str | None
    operation_id: str | None
    attempt: Any
    user_id: str | None
    session_id: str | None
    severity: str
    recovered: bool
    environment: str


def _safe_str(value: Any) -> str:
    if type(value) is str:
        return value
    try:
        # str() also turns str-based enums (Action, Severity) into their plain value
        return str(value)
    except Exception as exc:  # noqa: BLE001 - a broken __str__ must not lose the row
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not lose the row
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _clean(text: str, limit: int) -> str:
    """Cut (already redacted) text to `limit` characters and drop NULs (Postgres text cannot hold them)."""
    text = cut(text, limit)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


Scrub = Callable[[str], str]


def json_safe(value: Any, limit: int, depth: int = 0, scrub: Scrub = redact_text) -> Any:
    """A redacted (by `scrub`), JSON-serialisable copy of `value`: unknown objects become their repr."""
    kind = type(value)
    if kind is str:  # the common case first
        return _clean(scrub(value), limit)
    if value is None or isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clean(scrub(value), limit)
    if depth >= _MAX_DEPTH:
        return f"[{type(value).__name__} nested too deep]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= _MAX_ITEMS:
                out["_more_items"] = len(value) - _MAX_ITEMS
                break
            name = _clean(scrub(_safe_str(key)), 200)
            out[name] = REDACTED if is_sensitive_key(name) else json_safe(item, limit, depth + 1, scrub)
        return out
    if isinstance(value, _SEQUENCES):
        items = list(value)
        safe = [json_safe(item, limit, depth + 1, scrub) for item in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            safe.append(f"[{len(items) - _MAX_ITEMS} more items]")
        return safe
    if isinstance(value, _BYTES):
        return _clean(scrub(bytes(value[: limit * 4]).decode("utf-8", errors="replace")), limit)
    if isinstance(value, datetime):
        return value.isoformat()
    return _clean(scrub(_safe_repr(value)), limit)


# The most characters JSON can spend on one character of a string ("\u0001"), and an upper bound
# for a number, a bool or null, plus quotes, colon and comma around each item.
_JSON_CHAR_MAX = 6
_JSON_SCALAR_MAX = 32
_JSON_ITEM_OVERHEAD = 6
_JSON_INT_MAX = 10**30  # fewer than _JSON_SCALAR_MAX digits


def _surely_fits(safe: dict[str, Any], limit: int) -> bool:
    """True when `safe` (flat, from json_safe) cannot serialise to more than `limit` characters.

    Serialising only to measure cost a quarter of building a row (the row's JSON is made again
    when it is stored); most contexts are a few short scalars and fit by a wide margin, so an
    upper bound decides. Nested or large ones are measured as before.
    """
    total = 2
    for key, value in safe.items():
        if type(value) is str:
            total += _JSON_CHAR_MAX * (len(key) + len(value)) + _JSON_ITEM_OVERHEAD
        elif type(value) is int and not -_JSON_INT_MAX < value < _JSON_INT_MAX:
            return False
        elif value is None or type(value) in (bool, int, float):
            total += _JSON_CHAR_MAX * len(key) + _JSON_SCALAR_MAX + _JSON_ITEM_OVERHEAD
        else:
            return False
    return total <= limit


def _raw_context(p: Pending) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    err = p.error
    if err.context:
        raw.update(err.context)
    if p.context:
        raw.update(p.context)
    for name in ("status_code", "retry_after_s", "field"):
        value = getattr(err, name, None)
        if value is not None:
            raw.setdefault(name, value)
    exc = err.cause if err.cause is not None else p.original
    if isinstance(exc, BaseException) and not isinstance(exc, AppError):
        raw.setdefault("exception", f"{type(exc).__module__}.{type(exc).__qualname__}")
    if not isinstance(p.original, BaseException):
        raw.setdefault("recorded_value", p.original)
    return raw


def _context(raw: dict[str, Any], limit: int, scrub: Scrub) -> dict[str, Any] | None:
    if not raw:
        return None
    safe = json_safe(raw, limit, 0, scrub)
    if _surely_fits(safe, limit):
        return safe
    text = json.dumps(safe, ensure_ascii=False, separators=(",", ":"))
    if len(text) > limit:
        # already redacted above, so a cut preview cannot expose anything
        return {"_truncated": True, "_chars": len(text), "_preview": _clean(text, limit)}
    return safe


def _stack_trace(p: Pending, limit: int, scrub: Scrub) -> str | None:
    """The traceback of a real exception (one that was raised), redacted, then cut; None otherwise."""
    exc: BaseException | None = None
    if isinstance(p.original, BaseException) and p.original.__traceback__ is not None:
        exc = p.original
    elif p.error.cause is not None and p.error.cause.__traceback__ is not None:
        exc = p.error.cause
    if exc is None:
        return None
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as inner:  # noqa: BLE001 - a traceback that cannot be formatted is summarised
        text = f"<traceback could not be formatted: {type(inner).__name__}>"
    # redacted whole before it is cut: a cut inside a key would leave a tail no pattern knows.
    # Keep the end of a long trace: the frames nearest the failure matter most.
    text = cut(scrub(text), limit, keep="end")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _width(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = _safe_str(value)
    width = _WIDTHS.get(name)
    if width is not None and len(text) > width:
        text = text[:width]
    return text.replace("\x00", "") if "\x00" in text else text


# What an id looks like: a uuid, "req_011C...", "batch-7", an email; a user name may hold spaces.
_ID_SHAPE = re.compile(r"[\w.:@+\-]+")
_NAME_SHAPE = re.compile(r"[\w.:@+\-]+(?: [\w.:@+\-]+)*")


def _id(name: str, value: Any, scrub: Scrubber) -> str | None:
    """An id column's value, or [REDACTED] when it is not id-shaped or holds a secret."""
    if value is None:
        return None
    return _id_text(name, _safe_str(value), scrub.known)


@lru_cache(maxsize=4096)
def _id_text(name: str, text: str, known: tuple[str, ...]) -> str | None:
    # the same few ids (this user, this batch, this session) come in row after row
    shape = _NAME_SHAPE if name == "user_id" else _ID_SHAPE
    if shape.fullmatch(text) is None or Scrubber.with_known(known)(text) != text:
        return REDACTED
    return _width(name, text)


def _attempt(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if _INT32[0] <= number <= _INT32[1] else None


def build_row(p: Pending, *, text_limit: int, context_limit: int) -> dict[str, Any]:
    """The `error_logs` row for pending error `p` (every text field redacted, then cut)."""
    err = p.error
    raw = _raw_context(p)
    # a value under a secret-named key is removed from every other field of the row too
    scrub = Scrubber(secrets_under_keys(raw) if raw else ())
    message = _clean(scrub(_safe_str(err.message)), text_limit)
    component = _width("component", scrub(_safe_str(p.component))) or "unknown"
    error_type = _width("error_type", err.error_type) or ErrorType.INTERNAL
    error_code = _width("error_code", _safe_str(err.code)) or ErrorCode.INTERNAL
    return {
        "error_id": p.error_id,
        "created_at": p.created_at,
        "error_type": error_type,
        "error_code": error_code,
        "severity": p.severity,
        "message": message,
        "user_message": _clean(scrub(_safe_str(err.user_message)), text_limit),
        "context": _context(raw, context_limit, scrub),
        "stack_trace": _stack_trace(p, text_limit, scrub),
        "component": component,
        "request_id": _id("request_id", p.request_id, scrub),
        "operation_id": _id("operation_id", p.operation_id, scrub),
        "attempt": _attempt(p.attempt),
        "fingerprint": fingerprint(error_type, error_code, component, message),
        "user_id": _id("user_id", p.user_id, scrub),
        "session_id": _id("session_id", p.session_id, scrub),
        "environment": _width("environment", p.environment),
        "is_recoverable": bool(err.is_recoverable),
        "recovery_action": _width("recovery_action", _safe_str(err.action)),
        "recovered": bool(p.recovered),
    }


def fallback_row(p: Pending, problem: BaseException) -> dict[str, Any]:
    """A minimal row when building the full one failed: the error is still counted, nothing leaks."""
    return {
        "error_id": p.error_id,
        "created_at": p.created_at,
        "error_type": ErrorType.UI,
        "error_code": ErrorCode.UNRECORDABLE,
        "severity": p.severity,
        "message": f"An error could not be prepared for the log ({type(problem).__name__}).",
        "user_message": None,
        "context": None,
        "stack_trace": None,
        "component": _width("component", redact_text(_safe_str(p.component))) or "unknown",
        "request_id": None,
        "operation_id": _id("operation_id", p.operation_id, Scrubber()),
        "attempt": None,
        "fingerprint": fingerprint("ui", ErrorCode.UNRECORDABLE, _safe_str(p.component), ""),
        "user_id": _id("user_id", p.user_id, Scrubber()),  # still the person's: not shown to everyone
        "session_id": None,
        "environment": _width("environment", p.environment),
        "is_recoverable": False,
        "recovery_action": None,
        "recovered": bool(p.recovered),
    }
