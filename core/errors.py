"""Typed errors and `classify()`, which maps any exception onto them.

AppError                      base: code, severity, recoverable flag, user message, action
 ├── APIError                 the model service answered with an error (rate limit, overload, auth, ...)
 │    └── _LimiterWait        (resilience) an info row: a call waits long for the rate limiter
 ├── NetworkError             no answer at all: connection refused/reset, timeout, DNS, cut stream
 ├── DatabaseError            the store failed: connection lost, locked, constraint violated
 ├── GenerationError          the model answered, but not with a usable conversation
 ├── ValidationError          input we refuse: a bad template, count, upload or setting
 │    └── NotFoundError       no such row, or one the actor may not see (they answer alike)
 ├── UIError                  a page or section failed; also every exception we do not know
 ├── CircuitOpenError         (resilience) a breaker refused the call; error_type "api"
 │    ├── ClaudeCircuitOpenError    the model service's breaker
 │    └── DatabaseCircuitOpenError  the database's breaker; error_type "database"
 └── _BreakerEvent            (resilience) a breaker changed state; error_type "api"
      └── _DatabaseBreakerEvent     the database's breaker; error_type "database"

Codes live in one enum, `ErrorCode`, here: every `code` an AppError carries, every code the
error log stores (events such as `circuit_opened` and `rate_limit_wait` too) and every
`last_error_code` of a batch item is a member, and its value is the stored string. Code
that compares codes compares members; a string that is not a member fails when the error
is made (`ErrorCode(...)` raises ValueError), apart from `http_<status>` for a status
without a name of its own.

Exceptions are classified once, at the boundary where they enter (the client, the store,
the page boundary). `classify()` never raises: an unknown exception becomes UIError/internal.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sqlite3
import traceback
from enum import StrEnum
from typing import Any

from core.wording import counted

__all__ = [
    "EVENT_CODES",
    "Action",
    "APIError",
    "AppError",
    "DatabaseError",
    "ErrorCode",
    "ErrorType",
    "GenerationError",
    "KEY_REJECTED_MESSAGE",
    "NetworkError",
    "NotFoundError",
    "Severity",
    "UIError",
    "ValidationError",
    "SANDBOX_FAULT_HEADER",
    "classify",
    "gave_up",
    "gave_up_text",
    "without_promise",
]


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    CRITICAL = "critical"


class ErrorCode(StrEnum):
    """Every code the app raises, records or stores; the value is what error_logs.error_code holds.

    `ErrorCode("http_418")` is the one open family: a status the table below does not name
    (see `_missing_`). Any other unknown value raises ValueError.
    """

    # the model service answered with an error (APIError), by HTTP status
    API_ERROR = "api_error"
    BAD_REQUEST = "bad_request"
    AUTHENTICATION_FAILED = "authentication_failed"
    BILLING_ERROR = "billing_error"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    REQUEST_TIMEOUT = "request_timeout"
    CONFLICT = "conflict"
    REQUEST_TOO_LARGE = "request_too_large"
    UNPROCESSABLE = "unprocessable"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    BAD_GATEWAY = "bad_gateway"
    SERVICE_UNAVAILABLE = "service_unavailable"
    GATEWAY_TIMEOUT = "gateway_timeout"
    OVERLOADED = "overloaded"
    SPEND_LIMIT = "spend_limit"
    STREAM_ERROR = "stream_error"
    MALFORMED_API_KEY = "malformed_api_key"
    # no answer at all (NetworkError)
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    STREAM_CUT = "stream_cut"
    # the store failed (DatabaseError)
    DATABASE_ERROR = "database_error"
    FOREIGN_KEY_VIOLATION = "foreign_key_violation"
    DUPLICATE_KEY = "duplicate_key"
    INTEGRITY_ERROR = "integrity_error"
    DB_TIMEOUT = "db_timeout"
    DB_LOCKED = "db_locked"
    DB_CONNECTION = "db_connection"
    DB_STATEMENT = "db_statement"
    DB_ERROR = "db_error"
    # the model answered, but not with a usable conversation (GenerationError)
    INVALID_RESPONSE = "invalid_response"
    INVALID_API_RESPONSE = "invalid_api_response"
    MALFORMED_JSON = "malformed_json"
    # input we refuse (ValidationError): templates, parameters, uploads, batches, drafts
    INVALID_INPUT = "invalid_input"
    INVALID_ENCODING = "invalid_encoding"
    UNKNOWN_TEMPLATE = "unknown_template"
    INVALID_TEMPLATE = "invalid_template"
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"
    UNUSED_VARIABLE = "unused_variable"
    TEMPLATE_ARCHIVED = "template_archived"
    TEMPLATE_CONFLICT = "template_conflict"  # someone saved a newer version since the edit began
    INVALID_TEMPLATE_FILE = "invalid_template_file"
    UNKNOWN_MODEL = "unknown_model"
    MISSING_VALUE = "missing_value"
    TOO_LONG = "too_long"
    OUT_OF_RANGE = "out_of_range"
    ODD_TURNS = "odd_turns"
    UPLOAD_TOO_LARGE = "upload_too_large"
    EMPTY_UPLOAD = "empty_upload"
    INVALID_CSV = "invalid_csv"
    DUPLICATE_COLUMNS = "duplicate_columns"
    MISSING_COLUMNS = "missing_columns"
    TOO_MANY_ROWS = "too_many_rows"
    VALUE_TOO_LONG = "value_too_long"
    INVALID_TURNS = "invalid_turns"
    EMPTY_VALUE = "empty_value"
    INVALID_COUNT = "invalid_count"
    EMPTY_CHOICE = "empty_choice"
    INVALID_CONCURRENCY = "invalid_concurrency"
    INVALID_LIMIT = "invalid_limit"
    UNKNOWN_STATE = "unknown_state"
    UNKNOWN_BATCH = "unknown_batch"
    AMBIGUOUS_BATCH = "ambiguous_batch"
    INVALID_TRANSITION = "invalid_transition"
    NOTHING_TO_RETRY = "nothing_to_retry"
    INVALID_MODE = "invalid_mode"
    INVALID_BUDGET = "invalid_budget"
    DRAFT_FINISHED = "draft_finished"
    GENERATION_RUNNING = "generation_running"
    UNKNOWN_DRAFT = "unknown_draft"
    # a page failed, or an exception we do not know (UIError)
    INTERNAL = "internal"
    FILE_ERROR = "file_error"
    OS_ERROR = "os_error"
    OUT_OF_MEMORY = "out_of_memory"
    # the error log's own
    NOT_AN_EXCEPTION = "not_an_exception"
    UNRECORDABLE = "unrecordable"
    # events, not failures: breaker transitions, a long rate-limit wait, an item a dead worker held
    CIRCUIT_OPEN = "circuit_open"  # a call the open breaker refused (an error, not the state change)
    CIRCUIT_OPENED = "circuit_opened"
    CIRCUIT_HALF_OPEN = "circuit_half_open"
    CIRCUIT_CLOSED = "circuit_closed"
    RATE_LIMIT_WAIT = "rate_limit_wait"
    WORKER_LOST = "worker_lost"
    # a Message Batches request that did not succeed: errored (its error type beside it), expired, canceled,
    # or without a result line; and a batch the spend cap paused
    BATCH_REQUEST_ERRORED = "batch_request_errored"
    BATCH_REQUEST_EXPIRED = "batch_request_expired"
    BATCH_REQUEST_CANCELED = "batch_request_canceled"
    BATCH_REQUEST_MISSING = "batch_request_missing"
    BUDGET_REACHED = "budget_reached"

    @classmethod
    def _missing_(cls, value: object) -> ErrorCode | None:
        # http_<status> for a status without a name: a pseudo-member, like a combined Flag value
        if isinstance(value, str) and _HTTP_CODE.fullmatch(value):
            member = str.__new__(cls, value)
            member._name_ = value.upper()
            member._value_ = value
            return member
        return None


_HTTP_CODE = re.compile(r"http_[1-5][0-9][0-9]")

# the codes of rows that are events, not errors: a breaker's state changes. The error log's
# filter tells them apart by code (which its hourly rollup keeps), so counts of errors leave them out.
EVENT_CODES: frozenset[ErrorCode] = frozenset(
    {ErrorCode.CIRCUIT_OPENED, ErrorCode.CIRCUIT_HALF_OPEN, ErrorCode.CIRCUIT_CLOSED})


class ErrorType(StrEnum):
    """The six kinds of AppError (and "internal" for AppError itself); the value is error_logs.error_type."""

    API = "api"
    NETWORK = "network"
    DATABASE = "database"
    GENERATION = "generation"
    VALIDATION = "validation"
    UI = "ui"
    INTERNAL = "internal"


class Action(StrEnum):
    RETRY = "retry"
    FIX_SETTINGS = "fix_settings"
    FIX_INPUT = "fix_input"
    CONTACT_SUPPORT = "contact_support"


class AppError(Exception):
    """Base of every error the app shows or records."""

    error_type: ErrorType = ErrorType.INTERNAL
    default_code = ErrorCode.INTERNAL
    default_severity = Severity.ERROR
    default_recoverable = False
    default_user_message = "Something went wrong inside the app. The error has been recorded."
    default_action = Action.CONTACT_SUPPORT

    def __init__(
        self,
        message: str = "",
        *,
        code: ErrorCode | None = None,
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
        # ErrorCode(): a string that is not a member fails here, where it is made, not in a query later
        self.code = ErrorCode(code) if code else self.default_code
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
        self.error_id: str | None = None  # the error log's id, set when this error is first recorded
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
        return f"{type(self).__name__}(code={str(self.code)!r}, message={self.message!r})"


class APIError(AppError):
    error_type = ErrorType.API
    default_code = ErrorCode.API_ERROR
    default_recoverable = True
    default_user_message = "The model service returned an error. It will be retried."
    default_action = Action.RETRY


class NetworkError(AppError):
    error_type = ErrorType.NETWORK
    default_code = ErrorCode.NETWORK_ERROR
    default_severity = Severity.WARN
    default_recoverable = True
    default_user_message = "Could not reach the model service. It will be retried."
    default_action = Action.RETRY


class DatabaseError(AppError):
    error_type = ErrorType.DATABASE
    default_code = ErrorCode.DATABASE_ERROR
    default_recoverable = True
    default_user_message = "The database could not be reached. Your work is kept and will be saved shortly."
    default_action = Action.RETRY


class GenerationError(AppError):
    error_type = ErrorType.GENERATION
    default_code = ErrorCode.INVALID_RESPONSE
    default_severity = Severity.WARN
    default_recoverable = True
    default_user_message = "The model's reply was not a usable conversation. It will be generated again."
    default_action = Action.RETRY


class ValidationError(AppError):
    error_type = ErrorType.VALIDATION
    default_code = ErrorCode.INVALID_INPUT
    default_severity = Severity.INFO
    default_recoverable = False
    default_user_message = "Some input is not valid. Please correct it and try again."
    default_action = Action.FIX_INPUT


class NotFoundError(ValidationError):
    """What was asked for does not exist, or the actor may not see it: the two answer alike.

    The CLI exits 1 on it (the operation failed), not 2: the arguments were well formed.
    """

    default_code = ErrorCode.NOT_FOUND
    default_user_message = "Not found."


class UIError(AppError):
    error_type = ErrorType.UI
    default_code = ErrorCode.INTERNAL
    default_severity = Severity.ERROR
    default_recoverable = False
    default_user_message = "Something went wrong on this page. The error has been recorded."
    default_action = Action.CONTACT_SUPPORT


ERROR_TYPES: dict[ErrorType, type[AppError]] = {
    cls.error_type: cls for cls in (APIError, NetworkError, DatabaseError, GenerationError, ValidationError, UIError)
}

# where the key really comes from: no Settings field changes it
KEY_REJECTED_MESSAGE = ("The Anthropic API key was rejected. The app reads it from ANTHROPIC_API_KEY, set in the "
                        "environment or in .streamlit/secrets.toml (no Settings field changes it): set a valid key "
                        "there and restart the app.")

# status -> (code, severity, recoverable, user message, action)
_API_STATUS: dict[int, tuple[ErrorCode, Severity, bool, str, Action]] = {
    400: (ErrorCode.BAD_REQUEST, Severity.ERROR, False,
          "The model service rejected the request as malformed.", Action.CONTACT_SUPPORT),
    401: (ErrorCode.AUTHENTICATION_FAILED, Severity.CRITICAL, False, KEY_REJECTED_MESSAGE, Action.FIX_SETTINGS),
    402: (ErrorCode.BILLING_ERROR, Severity.CRITICAL, False,
          "The Anthropic account needs payment details before it can be used.", Action.FIX_SETTINGS),
    403: (ErrorCode.PERMISSION_DENIED, Severity.CRITICAL, False,
          "The API key may not use this model or feature. Check the key (ANTHROPIC_API_KEY, in the environment "
          "or .streamlit/secrets.toml) and the model (Settings → Model).", Action.FIX_SETTINGS),
    404: (ErrorCode.NOT_FOUND, Severity.ERROR, False,
          "The model or endpoint was not found. Check the model name in Settings.", Action.FIX_SETTINGS),
    408: (ErrorCode.REQUEST_TIMEOUT, Severity.WARN, True,
          "The model service timed out. It will be retried.", Action.RETRY),
    409: (ErrorCode.CONFLICT, Severity.WARN, True, "The model service reported a conflict. It will be retried.",
          Action.RETRY),
    413: (ErrorCode.REQUEST_TOO_LARGE, Severity.ERROR, False,
          "The request is too large for the model. Shorten the template or reduce the turns.", Action.FIX_INPUT),
    422: (ErrorCode.UNPROCESSABLE, Severity.ERROR, False,
          "The model service could not process the request.", Action.CONTACT_SUPPORT),
    429: (ErrorCode.RATE_LIMITED, Severity.WARN, True,
          "The rate limit was reached. The request will be retried after the wait the service asks for.",
          Action.RETRY),
    500: (ErrorCode.SERVER_ERROR, Severity.ERROR, True, "The model service had an internal error. It will be retried.",
          Action.RETRY),
    502: (ErrorCode.BAD_GATEWAY, Severity.ERROR, True, "The model service is unreachable for a moment. It will be retried.",
          Action.RETRY),
    503: (ErrorCode.SERVICE_UNAVAILABLE, Severity.ERROR, True,
          "The model service is unavailable for a moment. It will be retried.", Action.RETRY),
    504: (ErrorCode.GATEWAY_TIMEOUT, Severity.ERROR, True, "The model service timed out. It will be retried.",
          Action.RETRY),
    529: (ErrorCode.OVERLOADED, Severity.WARN, True, "The model service is overloaded. It will be retried.",
          Action.RETRY),
}

# the sandbox marks the answers its fault injection (the Settings page's chaos switch) made up
SANDBOX_FAULT_HEADER = "x-sandbox-fault"
_CHAOS_NOTE = ("The sandbox's chaos switch made this call fail on purpose (Settings → Chaos switch); "
               "turn it off there to stop it.")
_CHAOS_401 = ("The sandbox's chaos switch rejects every call with 401 on purpose; the API key is not the problem. "
              "Turn the switch off in Settings → Chaos switch.")

# the sentence a recoverable error's message ends with while attempts are left: "It will be
# retried.", "The request will be retried after ...", "It will be generated again."
_RETRY_PROMISE = re.compile(r"\s*(?:It|The request) will be (?:retried|generated again)\b[^.]*\.")


def without_promise(text: str) -> str:
    """The message without its promise of another attempt (for an error nothing will retry)."""
    return _RETRY_PROMISE.sub("", text).strip()


def gave_up_text(message: str, attempts: int) -> str:
    """`message` once the retries are used up: no promise of another attempt, and how many there were."""
    return f"{without_promise(message)} Gave up after {counted(attempts, 'attempt')}."


def gave_up(err: AppError, attempts: int) -> AppError:
    """Say on `err` that the retries are used up (see `gave_up_text`)."""
    err.user_message = gave_up_text(err.user_message, attempts)
    err.context["gave_up_after"] = attempts
    return err


def _chaos_made(err: AppError, headers: Any) -> AppError:
    """An error the sandbox's fault injection caused says so, instead of blaming the key or the service."""
    try:
        fault = headers.get(SANDBOX_FAULT_HEADER) if headers is not None else None
    except (AttributeError, TypeError):
        fault = None
    if not fault:
        return err
    err.context["sandbox_fault"] = str(fault)
    if err.code == ErrorCode.AUTHENTICATION_FAILED:
        err.user_message = _CHAOS_401
    else:
        err.user_message = f"{err.user_message} {_CHAOS_NOTE}"
    return err


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
        return NetworkError(f"Request to the model service timed out: {exc}", code=ErrorCode.TIMEOUT, cause=exc)
    if isinstance(exc, anthropic.APIConnectionError) and _illegal_header(exc):
        return _malformed_key(exc)
    if isinstance(exc, anthropic.APIConnectionError):
        return NetworkError(f"Could not connect to the model service: {exc}", code=ErrorCode.CONNECTION_ERROR, cause=exc)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        api_message = getattr(exc, "api_message", None) or str(exc)
        request_id = getattr(exc, "request_id", None)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        retry_after = _retry_after(headers)
        if status == 429 and any(m in api_message.lower() for m in _SPEND_LIMIT_MARKERS):
            return APIError(
                f"Spend limit reached ({status}): {api_message}", code=ErrorCode.SPEND_LIMIT, severity=Severity.CRITICAL,
                recoverable=False, user_message="The Anthropic account's spend limit is reached. Raise it in the "
                "Anthropic console or wait for the limit to reset.", action=Action.FIX_SETTINGS,
                status_code=status, request_id=request_id, cause=exc)
        if status in _API_STATUS:
            code, severity, recoverable, user_message, action = _API_STATUS[status]
        elif status >= 500:
            code, severity, recoverable, user_message, action = _API_STATUS[500]
        else:
            code, severity, recoverable, user_message, action = (
                ErrorCode(f"http_{status}"), Severity.ERROR, False, "The model service refused the request.",
                Action.CONTACT_SUPPORT)
        return _chaos_made(APIError(
            f"{type(exc).__name__} ({status}): {api_message}", code=code, severity=severity,
            recoverable=recoverable, user_message=user_message, action=action, status_code=status,
            request_id=request_id, retry_after_s=retry_after, cause=exc), headers)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return GenerationError(f"The model service sent an invalid response: {exc}", code=ErrorCode.INVALID_API_RESPONSE,
                               cause=exc)
    if isinstance(exc, anthropic.APIError):
        # SSE errors mid-stream, and other API errors without a status
        return APIError(f"{type(exc).__name__}: {exc}", code=ErrorCode.STREAM_ERROR, cause=exc)
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
        "HTTP does not allow.", code=ErrorCode.MALFORMED_API_KEY, severity=Severity.CRITICAL, recoverable=False,
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
        code = ErrorCode.FOREIGN_KEY_VIOLATION if "foreign key" in lower else (
            ErrorCode.DUPLICATE_KEY if "unique" in lower or "duplicate" in lower else ErrorCode.INTEGRITY_ERROR)
        return DatabaseError(f"{code}: {text}", code=code, recoverable=False, severity=Severity.ERROR,
                             user_message="The data conflicts with what is already saved; nothing was changed.",
                             action=Action.CONTACT_SUPPORT, cause=exc)
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseError(f"Database pool timeout: {text}", code=ErrorCode.DB_TIMEOUT, cause=exc)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        lower = text.lower()
        if "locked" in lower or "busy" in lower:
            code = ErrorCode.DB_LOCKED
        elif "timeout" in lower or "timed out" in lower:
            code = ErrorCode.DB_TIMEOUT
        else:
            code = ErrorCode.DB_CONNECTION
        return DatabaseError(f"{code}: {text}", code=code, recoverable=True, cause=exc)
    if isinstance(exc, sa_exc.ProgrammingError | sa_exc.DataError):
        return DatabaseError(f"Database rejected the statement: {text}", code=ErrorCode.DB_STATEMENT, recoverable=False,
                             user_message="The database rejected an operation. The error has been recorded.",
                             action=Action.CONTACT_SUPPORT, cause=exc)
    return DatabaseError(f"{type(exc).__name__}: {text}", code=ErrorCode.DB_ERROR, recoverable=False, cause=exc)


def classify(exc: BaseException, **overrides: Any) -> AppError:
    """Map any exception onto an AppError. Never raises."""
    try:
        err = _classify(exc)
        for key, value in overrides.items():
            setattr(err, key, value)
        return err
    except Exception as inner:  # noqa: BLE001 - classify must never raise
        # the exception's own __str__ may be what failed; name types only, never format values
        return UIError(f"Could not classify {type(exc).__name__}: {type(inner).__name__}", code=ErrorCode.INTERNAL,
                       cause=exc if isinstance(exc, BaseException) else None)


def _classify(exc: BaseException) -> AppError:
    if isinstance(exc, AppError):
        return exc
    for mapper in (_from_anthropic, _from_sqlalchemy):
        mapped = mapper(exc)
        if mapped is not None:
            return mapped
    if isinstance(exc, sqlite3.IntegrityError):
        return DatabaseError(str(exc), code=ErrorCode.INTEGRITY_ERROR, recoverable=False, cause=exc)
    if isinstance(exc, sqlite3.OperationalError):
        return DatabaseError(str(exc), code=ErrorCode.DB_LOCKED if "locked" in str(exc) else ErrorCode.DB_CONNECTION, cause=exc)
    if _is_httpx_error(exc) and _illegal_header(exc):
        return _malformed_key(exc)
    if _is_httpx_error(exc):
        name = type(exc).__name__
        code = ErrorCode.TIMEOUT if "Timeout" in name else ErrorCode.CONNECTION_ERROR
        return NetworkError(f"{name}: {exc}", code=code, cause=exc)
    if isinstance(exc, json.JSONDecodeError):
        return GenerationError(f"Malformed JSON: {exc}", code=ErrorCode.MALFORMED_JSON, cause=exc)
    if isinstance(exc, UnicodeDecodeError):
        return ValidationError(f"Invalid text encoding: {exc}", code=ErrorCode.INVALID_ENCODING,
                               user_message="The file is not valid UTF-8 text. Save it as UTF-8 and upload again.",
                               cause=exc)
    if isinstance(exc, TimeoutError):
        return NetworkError(f"Timed out: {exc}", code=ErrorCode.TIMEOUT, cause=exc)
    if isinstance(exc, ConnectionError):
        return NetworkError(f"{type(exc).__name__}: {exc}", code=ErrorCode.CONNECTION_ERROR, cause=exc)
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        return UIError(f"{type(exc).__name__}: {exc}", code=ErrorCode.FILE_ERROR, severity=Severity.ERROR,
                       user_message="A file the app needs could not be opened. The error has been recorded.",
                       action=Action.FIX_SETTINGS, cause=exc)
    if isinstance(exc, OSError):
        return UIError(f"{type(exc).__name__}: {exc}", code=ErrorCode.OS_ERROR, recoverable=True, cause=exc)
    if isinstance(exc, MemoryError):
        return UIError("Out of memory", code=ErrorCode.OUT_OF_MEMORY, severity=Severity.CRITICAL, cause=exc)
    return UIError(f"{type(exc).__name__}: {exc}", code=ErrorCode.INTERNAL, cause=exc)


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
