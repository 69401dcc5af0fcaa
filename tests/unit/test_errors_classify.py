"""classify(): real exceptions, built the way their libraries build them, map onto typed AppErrors."""

from __future__ import annotations

import json
import socket
import sqlite3
from typing import Any

import anthropic
import httpx2
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy import exc as sa_exc

from core.errors import (
    Action,
    APIError,
    AppError,
    DatabaseError,
    GenerationError,
    NetworkError,
    Severity,
    UIError,
    ValidationError,
    classify,
)

URL = "https://api.anthropic.com/v1/messages"
REQUEST_ID = "req_011CSHoEeqs5C35K2UUqR7Fy"


def sdk_status_error(
    cls: type[anthropic.APIStatusError],
    status: int,
    *,
    error_type: str = "api_error",
    message: str = "Something failed.",
    headers: dict[str, str] | None = None,
) -> anthropic.APIStatusError:
    """An SDK status error exactly as the client makes it from an HTTP error response."""
    request = httpx2.Request("POST", URL)
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = httpx2.Response(
        status, request=request, headers={"request-id": REQUEST_ID, **(headers or {})}, json=body
    )
    return cls(f"Error code: {status} - {body}", response=response, body=body)


# (exception class, status, error type in the body, expected code, recoverable, severity)
STATUS_CASES: list[tuple[type[anthropic.APIStatusError], int, str, str, bool, Severity]] = [
    (anthropic.BadRequestError, 400, "invalid_request_error", "bad_request", False, Severity.ERROR),
    (anthropic.AuthenticationError, 401, "authentication_error", "authentication_failed", False, Severity.CRITICAL),
    (anthropic.PermissionDeniedError, 403, "permission_error", "permission_denied", False, Severity.CRITICAL),
    (anthropic.NotFoundError, 404, "not_found_error", "not_found", False, Severity.ERROR),
    (anthropic.RequestTimeoutError, 408, "timeout_error", "request_timeout", True, Severity.WARN),
    (anthropic.ConflictError, 409, "conflict_error", "conflict", True, Severity.WARN),
    (anthropic.ContentTooLargeError, 413, "request_too_large", "request_too_large", False, Severity.ERROR),
    (anthropic.UnprocessableEntityError, 422, "invalid_request_error", "unprocessable", False, Severity.ERROR),
    (anthropic.RateLimitError, 429, "rate_limit_error", "rate_limited", True, Severity.WARN),
    (anthropic.InternalServerError, 500, "api_error", "server_error", True, Severity.ERROR),
    (anthropic.InternalServerError, 502, "api_error", "bad_gateway", True, Severity.ERROR),
    (anthropic.APIStatusError, 502, "api_error", "bad_gateway", True, Severity.ERROR),
    (anthropic.ServiceUnavailableError, 503, "api_error", "service_unavailable", True, Severity.ERROR),
    (anthropic.GatewayTimeoutError, 504, "timeout_error", "gateway_timeout", True, Severity.ERROR),
    (anthropic.OverloadedError, 529, "overloaded_error", "overloaded", True, Severity.WARN),
    (anthropic.PaymentRequiredError, 402, "billing_error", "billing_error", False, Severity.CRITICAL),
]


@pytest.mark.parametrize(
    ("cls", "status", "error_type", "code", "recoverable", "severity"),
    STATUS_CASES,
    ids=[f"{c[0].__name__}-{c[1]}" for c in STATUS_CASES],
)
def test_sdk_status_errors_map_by_status(
    cls: type[anthropic.APIStatusError], status: int, error_type: str, code: str, recoverable: bool,
    severity: Severity,
) -> None:
    """Each HTTP status from the model service becomes an APIError with its code, severity and retry flag."""
    err = classify(sdk_status_error(cls, status, error_type=error_type, message=f"failure {status}"))
    assert isinstance(err, APIError)
    assert (err.code, err.is_recoverable, err.severity, err.status_code) == (code, recoverable, severity, status)
    assert err.request_id == REQUEST_ID
    assert f"failure {status}" in err.message
    assert (err.action == Action.RETRY) == recoverable


def test_unknown_4xx_status_is_not_retried() -> None:
    """A status without its own mapping (418) is an APIError that is not retried."""
    err = classify(sdk_status_error(anthropic.APIStatusError, 418, message="teapot"))
    assert isinstance(err, APIError)
    assert err.code == "http_418" and not err.is_recoverable


def test_unknown_5xx_status_is_retried_as_server_error() -> None:
    """An unmapped 5xx (507) is treated as a server error and retried."""
    err = classify(sdk_status_error(anthropic.InternalServerError, 507))
    assert err.code == "server_error" and err.is_recoverable


def test_spend_limit_429_is_not_recoverable() -> None:
    """A 429 that says the usage limit is reached is a critical spend-limit error, never retried."""
    exc = sdk_status_error(
        anthropic.RateLimitError, 429, error_type="rate_limit_error",
        message="You have reached your specified API usage limits. You will regain access on 2026-12-01.",
    )
    err = classify(exc)
    assert err.code == "spend_limit"
    assert not err.is_recoverable
    assert err.severity == Severity.CRITICAL and err.action == Action.FIX_SETTINGS


def test_retry_after_seconds_is_parsed() -> None:
    """A retry-after header in seconds is carried as retry_after_s."""
    exc = sdk_status_error(anthropic.RateLimitError, 429, error_type="rate_limit_error",
                           headers={"retry-after": "7"})
    assert classify(exc).retry_after_s == 7.0


def test_retry_after_ms_wins_over_seconds() -> None:
    """retry-after-ms is more precise than retry-after and is preferred."""
    exc = sdk_status_error(anthropic.OverloadedError, 529, error_type="overloaded_error",
                           headers={"retry-after": "7", "retry-after-ms": "1500"})
    assert classify(exc).retry_after_s == 1.5


def test_unparseable_retry_after_is_ignored() -> None:
    """An HTTP-date retry-after (not a number) leaves retry_after_s empty instead of failing."""
    exc = sdk_status_error(anthropic.RateLimitError, 429, headers={"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})
    err = classify(exc)
    assert err.code == "rate_limited" and err.retry_after_s is None


def test_sdk_connection_error_is_a_recoverable_network_error() -> None:
    """APIConnectionError (no answer at all) becomes a NetworkError that is retried."""
    exc = anthropic.APIConnectionError(request=httpx2.Request("POST", URL))
    err = classify(exc)
    assert isinstance(err, NetworkError)
    assert err.code == "connection_error" and err.is_recoverable


def test_sdk_timeout_is_a_recoverable_network_timeout() -> None:
    """APITimeoutError becomes a NetworkError with code timeout."""
    err = classify(anthropic.APITimeoutError(request=httpx2.Request("POST", URL)))
    assert isinstance(err, NetworkError)
    assert err.code == "timeout" and err.is_recoverable


def test_transport_error_from_httpx2_is_a_network_error() -> None:
    """A raw httpx2 transport error (connect failed) is a recoverable network error."""
    err = classify(httpx2.ConnectError("[Errno 111] Connection refused"))
    assert isinstance(err, NetworkError) and err.is_recoverable


def test_sdk_response_validation_error_is_a_generation_error() -> None:
    """A response the SDK cannot parse is a GenerationError (the answer was unusable)."""
    request = httpx2.Request("POST", URL)
    response = httpx2.Response(200, request=request, json={"unexpected": True})
    err = classify(anthropic.APIResponseValidationError(response, {"unexpected": True}))
    assert isinstance(err, GenerationError) and err.code == "invalid_api_response"


# ---- database --------------------------------------------------------------------------------


def _table(metadata: MetaData) -> Table:
    return Table("t", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


def test_sqlite_unique_violation_is_a_duplicate_key_not_retried() -> None:
    """A real unique violation on SQLite is a DatabaseError duplicate_key, not recoverable."""
    engine = create_engine("sqlite://")
    metadata = MetaData()
    table = _table(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(name="a"))
    with pytest.raises(sa_exc.IntegrityError) as info, engine.begin() as conn:
        conn.execute(insert(table).values(name="a"))
    err = classify(info.value)
    assert isinstance(err, DatabaseError)
    assert err.code == "duplicate_key" and not err.is_recoverable


def test_sqlite_database_is_locked_is_recoverable(tmp_path) -> None:
    """'database is locked' from a real competing writer is a recoverable db_locked error."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(sa_exc.OperationalError) as info, engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    assert "locked" in str(info.value)
    err = classify(info.value)
    assert isinstance(err, DatabaseError)
    assert err.code == "db_locked" and err.is_recoverable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_connection_refused_is_recoverable() -> None:
    """psycopg refusing to connect (nothing listens on the port) is a recoverable db_connection error."""
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere")
    try:
        with pytest.raises(sa_exc.OperationalError) as info:
            engine.connect()
    finally:
        engine.dispose()
    err = classify(info.value)
    assert isinstance(err, DatabaseError)
    assert err.code == "db_connection" and err.is_recoverable


def test_operational_error_with_an_empty_message_is_still_classified() -> None:
    """A driver error whose text is empty is still a DatabaseError, not a classification failure."""
    err = classify(sa_exc.OperationalError("SELECT 1", {}, Exception("")))
    assert isinstance(err, DatabaseError) and err.code == "db_connection"


def test_raw_sqlite_integrity_error_is_not_recoverable() -> None:
    """sqlite3.IntegrityError reaching us unwrapped is still a non-recoverable DatabaseError."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as info:
        conn.execute("INSERT INTO t VALUES (1)")
    err = classify(info.value)
    assert isinstance(err, DatabaseError) and not err.is_recoverable


# ---- standard library -------------------------------------------------------------------------


def test_timeout_error_is_a_network_timeout() -> None:
    """TimeoutError is a recoverable NetworkError with code timeout."""
    err = classify(TimeoutError("read timed out"))
    assert isinstance(err, NetworkError) and err.code == "timeout" and err.is_recoverable


def test_connection_reset_is_a_network_error() -> None:
    """ConnectionResetError (a peer hung up) is a recoverable network error."""
    err = classify(ConnectionResetError(104, "Connection reset by peer"))
    assert isinstance(err, NetworkError) and err.code == "connection_error" and err.is_recoverable


def test_generic_os_error_is_recoverable_ui_error() -> None:
    """A plain OSError (disk full) is recorded as os_error and may be retried."""
    err = classify(OSError(28, "No space left on device"))
    assert isinstance(err, UIError) and err.code == "os_error" and err.is_recoverable


def test_missing_file_is_a_file_error() -> None:
    """FileNotFoundError points the user at settings, not at a retry."""
    err = classify(FileNotFoundError(2, "No such file or directory", "data/studio.db"))
    assert err.code == "file_error" and err.action == Action.FIX_SETTINGS


def test_json_decode_error_is_a_generation_error() -> None:
    """Malformed JSON from the model is a GenerationError that is generated again."""
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads('{"turns": [')
    err = classify(info.value)
    assert isinstance(err, GenerationError) and err.code == "malformed_json" and err.is_recoverable


def test_unicode_decode_error_is_a_validation_error() -> None:
    """Invalid UTF-8 in an upload is a ValidationError asking for a UTF-8 file."""
    with pytest.raises(UnicodeDecodeError) as info:
        b"caf\xe9 \xff".decode("utf-8")
    err = classify(info.value)
    assert isinstance(err, ValidationError) and err.code == "invalid_encoding"
    assert "UTF-8" in err.user_message


def test_unknown_exception_is_an_internal_ui_error() -> None:
    """An exception nobody mapped becomes UIError internal, with its type in the message."""

    class Surprise(Exception):
        pass

    err = classify(Surprise("odd"))
    assert isinstance(err, UIError) and err.code == "internal"
    assert "Surprise: odd" in err.message
    assert err.cause is not None


def test_exception_whose_str_raises_does_not_break_classify() -> None:
    """classify never raises, even when the exception cannot be turned into text."""

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text for you")

    err = classify(Unprintable())
    assert isinstance(err, UIError)
    assert "Unprintable" in err.message


def test_app_errors_pass_through_unchanged() -> None:
    """An AppError is already classified: the same object comes back."""
    original = ValidationError("count must be 1..1000", field="count")
    assert classify(original) is original


def test_overrides_are_applied() -> None:
    """Keyword overrides set fields on the classified error (e.g. a caller's request id)."""
    err = classify(TimeoutError("slow"), request_id="req_local", severity=Severity.ERROR)
    assert err.request_id == "req_local" and err.severity == Severity.ERROR


def test_classify_never_raises_on_non_exceptions() -> None:
    """Even a value that is not an exception yields an AppError instead of raising."""
    odd: Any = "not an exception"
    err = classify(odd)
    assert isinstance(err, AppError)


def test_to_dict_names_the_original_exception() -> None:
    """to_dict() carries type, code and the underlying exception's class for the log."""
    data = classify(ConnectionResetError(104, "reset")).to_dict()
    assert data["error_type"] == "network" and data["error_code"] == "connection_error"
    assert data["exception"] == "ConnectionResetError"


def test_an_api_key_with_a_newline_is_a_malformed_key_not_a_network_outage() -> None:
    """The SDK's call with a key ending in a newline fails before sending; that is a bad key, never retried."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = anthropic.Anthropic(api_key="sk-ant-api03-newline\n", max_retries=0,
                                     base_url=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(anthropic.APIConnectionError) as raised:
            client.messages.create(model="claude-sonnet-5-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    finally:
        server.shutdown()
        server.server_close()
    err = classify(raised.value)
    assert isinstance(err, APIError) and not isinstance(err, NetworkError)
    assert err.code == "malformed_api_key" and not err.is_recoverable and err.action == Action.FIX_SETTINGS
    assert "sk-ant-api03-newline" not in err.message and "sk-ant-api03-newline" not in err.user_message
