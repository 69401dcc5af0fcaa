"""Typed errors and `classify()`, which maps any exception onto them.

AppError                      base: code, severity, recoverable flag, user message, action
 ├── APIError                 the model service answered with an error (rate limit, overload, auth, ...)
 ├── NetworkError             no answer at all: connection refused/reset, timeout, DNS, cut stream
 ├── DatabaseError            the store failed: connection lost, locked, constraint violated
 ├── GenerationError          the model answered, but not with a usable conversation
 ├── ValidationError          input we refuse: a bad template, count, upload or setting
 └── UIError                  a page or section failed; also every exception we do not know

Exceptions are classified once, at the boundary where they enter (the client, the store,
the page boundary). `classify()` never raises: an unknown exception becomes UIError/internal.
"""

from __future__ import annotations

import functools
import importlib
import json
import sqlite3
import traceback
from enum import StrEnum
from typing import Any

__all__ = [
    "Action",
    "APIError",
    "AppError",
    "DatabaseError",
    "GenerationError",
    "NetworkError",
    "Severity",
    "UIError",
    "ValidationError",
    "classify",
]


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    CRITICAL = "critical"


class Action(StrEnum):
    RETRY = "retry"
    FIX_SETTINGS = "fix_settings"
    FIX_INPUT = "fix_input"
    CONTACT_SUPPORT = "contact_support"


class AppError(Exception):
    """Base of every error the app shows or records."""

    error_type = "internal"
    default_code = "internal"
    default_severity = Severity.ERROR
    default_recoverable = False
    default_user_message = "Something went wrong inside the app. The error has been recorded."
    default_action = Action.CONTACT_SUPPORT

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        severity: Severity | str | None = None,
        recoverable: bool | None = None,
        user_message: str | None = None,
        action: Action | str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        field: str | None = None,
        partial_text: str | None = None,
        context: dict[str, Any] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.default_user_message
        super().__init__(self.message)
        self.severity = Severity(severity or self.default_severity)
        self.is_recoverable = self.default_recoverable if recoverable is None else recoverable
        self.user_message = user_message or self.default_user_message
        self.action = Action(action or self.default_action)
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        self.field = field
        self.partial_text = partial_text
        self.context = dict(context or {})
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    @property
    def stack_trace(self) -> str:
        exc: BaseException = self.cause if self.cause is not None else self
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_type": self.error_type,
            "error_code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "user_message": self.user_message,
            "is_recoverable": self.is_recoverable,
            "action": str(self.action),
            "status_code": self.status_code,
            "request_id": self.request_id,
            "retry_after_s": self.retry_after_s,
            "field": self.field,
            "context": self.context,
            "exception": type(self.cause).__name__ if self.cause is not None else type(self).__name__,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class APIError(AppError):
    error_type = "api"
    default_code = "api_error"
    default_recoverable = True
    default_user_message = "The model service returned an error. It will be retried."
    default_action = Action.RETRY


class NetworkError(AppError):
    error_type = "network"
    default_code = "network_error"
    default_severity = Severity.WARN
    default_recoverable = True
    default_user_message = "Could not reach the model service. It will be retried."
    default_action = Action.RETRY


class DatabaseError(AppError):
    error_type = "database"
    default_code = "database_error"
    default_recoverable = True
    default_user_message = "The database could not be reached. Your work is kept and will be saved shortly."
    default_action = Action.RETRY


class GenerationError(AppError):
    error_type = "generation"
    default_code = "invalid_response"
    default_severity = Severity.WARN
    default_recoverable = True
    default_user_message = "The model's reply was not a usable conversation. It will be generated again."
    default_action = Action.RETRY


class ValidationError(AppError):
    error_type = "validation"
    default_code = "invalid_input"
    default_severity = Severity.INFO
    default_recoverable = False
    default_user_message = "Some input is not valid. Please correct it and try again."
    default_action = Action.FIX_INPUT


class UIError(AppError):
    error_type = "ui"
    default_code = "internal"
    default_severity = Severity.ERROR
    default_recoverable = False
    default_user_message = "Something went wrong on this page. The error has been recorded."
    default_action = Action.CONTACT_SUPPORT


ERROR_TYPES: dict[str, type[AppError]] = {
    cls.error_type: cls for cls in (APIError, NetworkError, DatabaseError, GenerationError, ValidationError, UIError)
}

# status -> (code, severity, recoverable, user message, action)
_API_STATUS: dict[int, tuple[str, Severity, bool, str, Action]] = {
    400: ("bad_request", Severity.ERROR, False,
          "The model service rejected the request as malformed.", Action.CONTACT_SUPPORT),
    401: ("authentication_failed", Severity.CRITICAL, False,
          "The Anthropic API key was rejected. Check ANTHROPIC_API_KEY in Settings.", Action.FIX_SETTINGS),
    402: ("billing_error", Severity.CRITICAL, False,
          "The Anthropic account needs payment details before it can be used.", Action.FIX_SETTINGS),
    403: ("permission_denied", Severity.CRITICAL, False,
          "The API key may not use this model or feature. Check the key and model in Settings.",
          Action.FIX_SETTINGS),
    404: ("not_found", Severity.ERROR, False,
          "The model or endpoint was not found. Check the model name in Settings.", Action.FIX_SETTINGS),
    408: ("request_timeout", Severity.WARN, True,
          "The model service timed out. It will be retried.", Action.RETRY),
    409: ("conflict", Severity.WARN, True, "The model service reported a conflict. It will be retried.",
          Action.RETRY),
    413: ("request_too_large", Severity.ERROR, False,
          "The request is too large for the model. Shorten the template or reduce the turns.", Action.FIX_INPUT),
    422: ("unprocessable", Severity.ERROR, False,
          "The model service could not process the request.", Action.CONTACT_SUPPORT),
    429: ("rate_limited", Severity.WARN, True,
          "The rate limit was reached. The request will be retried after the wait the service asks for.",
          Action.RETRY),
    500: ("server_error", Severity.ERROR, True, "The model service had an internal error. It will be retried.",
          Action.RETRY),
    502: ("bad_gateway", Severity.ERROR, True, "The model service is unreachable for a moment. It will be retried.",
          Action.RETRY),
    503: ("service_unavailable", Severity.ERROR, True,
          "The model service is unavailable for a moment. It will be retried.", Action.RETRY),
    504: ("gateway_timeout", Severity.ERROR, True, "The model service timed out. It will be retried.",
          Action.RETRY),
    529: ("overloaded", Severity.WARN, True, "The model service is overloaded. It will be retried.",
          Action.RETRY),
}

_SPEND_LIMIT_MARKERS = ("spend limit", "spending limit", "credit balance", "usage limit", "billing", "quota")


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(float(ms) / 1000.0, 0.0)
        s = headers.get("retry-after")
        if s is not None:
            return max(float(s), 0.0)
    except (TypeError, ValueError):
        return None
    return None


def _from_anthropic(exc: BaseException) -> AppError | None:
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return NetworkError(f"Request to the model service timed out: {exc}", code="timeout", cause=exc)
    if isinstance(exc, anthropic.APIConnectionError) and _illegal_header(exc):
        return _malformed_key(exc)
    if isinstance(exc, anthropic.APIConnectionError):
        return NetworkError(f"Could not connect to the model service: {exc}", code="connection_error", cause=exc)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        api_message = getattr(exc, "api_message", None) or str(exc)
        request_id = getattr(exc, "request_id", None)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        retry_after = _retry_after(headers)
        if status == 429 and any(m in api_message.lower() for m in _SPEND_LIMIT_MARKERS):
            return APIError(
                f"Spend limit reached ({status}): {api_message}", code="spend_limit", severity=Severity.CRITICAL,
                recoverable=False, user_message="The Anthropic account's spend limit is reached. Raise it in the "
                "Anthropic console or wait for the limit to reset.", action=Action.FIX_SETTINGS,
                status_code=status, request_id=request_id, cause=exc)
        if status in _API_STATUS:
            code, severity, recoverable, user_message, action = _API_STATUS[status]
        elif status >= 500:
            code, severity, recoverable, user_message, action = _API_STATUS[500]
        else:
            code, severity, recoverable, user_message, action = (
                f"http_{status}", Severity.ERROR, False, "The model service refused the request.",
                Action.CONTACT_SUPPORT)
        return APIError(
            f"{type(exc).__name__} ({status}): {api_message}", code=code, severity=severity,
            recoverable=recoverable, user_message=user_message, action=action, status_code=status,
            request_id=request_id, retry_after_s=retry_after, cause=exc)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return GenerationError(f"The model service sent an invalid response: {exc}", code="invalid_api_response",
                               cause=exc)
    if isinstance(exc, anthropic.APIError):
        # SSE errors mid-stream, and other API errors without a status
        return APIError(f"{type(exc).__name__}: {exc}", code="stream_error", cause=exc)
    return None


def _illegal_header(exc: BaseException) -> bool:
    """True when httpx refused to send a header value (a key with a line break), found anywhere in the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ == "LocalProtocolError" and "header" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _malformed_key(exc: BaseException) -> AppError:
    # the refused header value is the key itself: the message names the problem, never the value
    return APIError(
        "The request was not sent: a header value (the API key) contains a line break or another character "
        "HTTP does not allow.", code="malformed_api_key", severity=Severity.CRITICAL, recoverable=False,
        user_message="The Anthropic API key is malformed (it contains a line break or a space, often from "
        "copying it). Set ANTHROPIC_API_KEY again without it.", action=Action.FIX_SETTINGS, cause=exc)


def _from_sqlalchemy(exc: BaseException) -> AppError | None:
    from sqlalchemy import exc as sa_exc

    if not isinstance(exc, sa_exc.SQLAlchemyError):
        return None
    # an empty driver message has no first line; keep "" rather than fail on [0]
    text = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:500]
    if isinstance(exc, sa_exc.IntegrityError):
        lower = text.lower()
        code = "foreign_key_violation" if "foreign key" in lower else (
            "duplicate_key" if "unique" in lower or "duplicate" in lower else "integrity_error")
        return DatabaseError(f"{code}: {text}", code=code, recoverable=False, severity=Severity.ERROR,
                             user_message="The data conflicts with what is already saved; nothing was changed.",
                             action=Action.CONTACT_SUPPORT, cause=exc)
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseError(f"Database pool timeout: {text}", code="db_timeout", cause=exc)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        lower = text.lower()
        if "locked" in lower or "busy" in lower:
            code = "db_locked"
        elif "timeout" in lower or "timed out" in lower:
            code = "db_timeout"
        else:
            code = "db_connection"
        return DatabaseError(f"{code}: {text}", code=code, recoverable=True, cause=exc)
    if isinstance(exc, sa_exc.ProgrammingError | sa_exc.DataError):
        return DatabaseError(f"Database rejected the statement: {text}", code="db_statement", recoverable=False,
                             user_message="The database rejected an operation. The error has been recorded.",
                             action=Action.CONTACT_SUPPORT, cause=exc)
    return DatabaseError(f"{type(exc).__name__}: {text}", code="db_error", recoverable=False, cause=exc)


def classify(exc: BaseException, **overrides: Any) -> AppError:
    """Map any exception onto an AppError. Never raises."""
    try:
        err = _classify(exc)
        for key, value in overrides.items():
            setattr(err, key, value)
        return err
    except Exception as inner:  # noqa: BLE001 - classify must never raise
        # the exception's own __str__ may be what failed; name types only, never format values
        return UIError(f"Could not classify {type(exc).__name__}: {type(inner).__name__}", code="internal",
                       cause=exc if isinstance(exc, BaseException) else None)


def _classify(exc: BaseException) -> AppError:
    if isinstance(exc, AppError):
        return exc
    for mapper in (_from_anthropic, _from_sqlalchemy):
        mapped = mapper(exc)
        if mapped is not None:
            return mapped
    if isinstance(exc, sqlite3.IntegrityError):
        return DatabaseError(str(exc), code="integrity_error", recoverable=False, cause=exc)
    if isinstance(exc, sqlite3.OperationalError):
        return DatabaseError(str(exc), code="db_locked" if "locked" in str(exc) else "db_connection", cause=exc)
    if _is_httpx_error(exc) and _illegal_header(exc):
        return _malformed_key(exc)
    if _is_httpx_error(exc):
        name = type(exc).__name__
        code = "timeout" if "Timeout" in name else "connection_error"
        return NetworkError(f"{name}: {exc}", code=code, cause=exc)
    if isinstance(exc, json.JSONDecodeError):
        return GenerationError(f"Malformed JSON: {exc}", code="malformed_json", cause=exc)
    if isinstance(exc, UnicodeDecodeError):
        return ValidationError(f"Invalid text encoding: {exc}", code="invalid_encoding",
                               user_message="The file is not valid UTF-8 text. Save it as UTF-8 and upload again.",
                               cause=exc)
    if isinstance(exc, TimeoutError):
        return NetworkError(f"Timed out: {exc}", code="timeout", cause=exc)
    if isinstance(exc, ConnectionError):
        return NetworkError(f"{type(exc).__name__}: {exc}", code="connection_error", cause=exc)
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        return UIError(f"{type(exc).__name__}: {exc}", code="file_error", severity=Severity.ERROR,
                       user_message="A file the app needs could not be opened. The error has been recorded.",
                       action=Action.FIX_SETTINGS, cause=exc)
    if isinstance(exc, OSError):
        return UIError(f"{type(exc).__name__}: {exc}", code="os_error", recoverable=True, cause=exc)
    if isinstance(exc, MemoryError):
        return UIError("Out of memory", code="out_of_memory", severity=Severity.CRITICAL, cause=exc)
    return UIError(f"{type(exc).__name__}: {exc}", code="internal", cause=exc)


@functools.cache
def _httpx_transport_errors() -> tuple[type[BaseException], ...]:
    # looked up once: a failed import of an absent package searches the path on every call,
    # which cost milliseconds per classify() and record() is meant to cost microseconds
    bases: list[type[BaseException]] = []
    for mod_name in ("httpx2", "httpx"):
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        base = getattr(mod, "TransportError", None)
        if isinstance(base, type) and issubclass(base, BaseException):
            bases.append(base)
    return tuple(bases)


def _is_httpx_error(exc: BaseException) -> bool:
    bases = _httpx_transport_errors()
    return bool(bases) and isinstance(exc, bases)
