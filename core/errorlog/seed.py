"""Synthetic error-log rows for benchmarks, demos and screenshots (`python -m core demo seed-errors`).

Rows look like what the app records: the same types, codes and severities as
`core.errors.classify`, messages with varying request ids, batch ids and numbers, and
fingerprints computed by the recorder's own `fingerprint()`, so groups form as in real use.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from core.auth.actor import system_actor
from core.auth.claims import AS_ACTOR
from core.config import get_settings
from core.errorlog.fingerprint import fingerprint
from core.errorlog.recorder import new_error_id
from core.errors import KEY_REJECTED_MESSAGE, ErrorCode, ErrorType, ValidationError, gave_up_text
from core.store.dialect import bulk_insert, is_sqlite
from core.store.schema import error_logs

__all__ = ["seed_errors", "SCENARIOS", "COMPONENTS"]

COMPONENTS = ("claude_client", "batch_worker", "generation", "drafts", "store", "page.generate", "page.batches")
# slots a row's user is drawn from (seed_errors maps the first ones to owners); the draw stays, so a seed
# gives the rows it always gave
_USERS = ("ana", "ben", "chloe", "dev", "emil", "farah", "gus", "hana", "ivan", "jo", "kai", "lena")
_TEMPLATES = ("customer_support", "tutoring", "therapy_intake", "code_review", "travel_agent", "onboarding")
_MODELS = ("claude-sonnet-5-5", "claude-haiku-5-0", "claude-opus-5-1")


@dataclass(frozen=True)
class Scenario:
    error_type: ErrorType
    code: ErrorCode
    severity: str
    recoverable: bool
    action: str
    components: tuple[str, ...]
    messages: tuple[str, ...]  # str.format templates over the fields of _fill()
    user_message: str
    weight: float
    recovered_share: float = 0.0  # of rows a retry later recovered
    in_batch_share: float = 0.6


_API = ("claude_client", "batch_worker", "generation")
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(ErrorType.API, ErrorCode.RATE_LIMITED, "warn", True, "retry", _API, (
        "RateLimitError (429): Number of request tokens has exceeded your per-minute rate limit ({req})",
        "RateLimitError (429): This request would exceed the rate limit of {rpm} requests per minute ({req})",
    ), "The rate limit was reached. The request will be retried.", 20, 0.92),
    Scenario(ErrorType.API, ErrorCode.OVERLOADED, "warn", True, "retry", _API, (
        "OverloadedError (529): Overloaded ({req})",
    ), "The model service is overloaded. It will be retried.", 12, 0.85),
    Scenario(ErrorType.API, ErrorCode.SERVER_ERROR, "error", True, "retry", _API, (
        "InternalServerError (500): Internal server error ({req})",
    ), "The model service had an internal error. It will be retried.", 6, 0.7),
    Scenario(ErrorType.API, ErrorCode.SERVICE_UNAVAILABLE, "error", True, "retry", _API, (
        "APIStatusError (503): Service temporarily unavailable ({req})",
    ), "The model service is unavailable for a moment. It will be retried.", 3, 0.7),
    Scenario(ErrorType.NETWORK, ErrorCode.TIMEOUT, "warn", True, "retry", _API, (
        "Request to the model service timed out: no response after {secs}.{ms}s",
        "Timed out: stream idle for {secs}s after {tokens} tokens",
    ), "Could not reach the model service. It will be retried.", 8, 0.8),
    Scenario(ErrorType.NETWORK, ErrorCode.CONNECTION_ERROR, "warn", True, "retry", _API, (
        "Could not connect to the model service: [Errno 111] Connection refused (10.0.{n}.{m}:443)",
        "Could not connect to the model service: stream cut after {tokens} tokens",
    ), "Could not reach the model service. It will be retried.", 5, 0.75),
    Scenario(ErrorType.API, ErrorCode.AUTHENTICATION_FAILED, "critical", False, "fix_settings", ("claude_client",), (
        "AuthenticationError (401): invalid x-api-key ({req})",
    ), KEY_REJECTED_MESSAGE, 1, 0.0, 0.3),
    Scenario(ErrorType.API, ErrorCode.SPEND_LIMIT, "critical", False, "fix_settings", ("claude_client", "batch_worker"), (
        "Spend limit reached (429): You have reached your specified API usage limits ({req})",
    ), "The Anthropic account's spend limit is reached.", 0.3, 0.0, 0.8),
    Scenario(ErrorType.GENERATION, ErrorCode.INVALID_RESPONSE, "warn", True, "retry", ("generation", "batch_worker"), (
        "Reply had {n} blocks, expected {turns} (block {m} does not start with User: or Assistant:)",
        "Reply ended after {n} of {turns} turns (stop_reason max_tokens at {tokens} tokens)",
    ), "The model's reply was not a usable conversation. It will be generated again.", 8, 0.88),
    Scenario(ErrorType.GENERATION, ErrorCode.MALFORMED_JSON, "warn", True, "retry", ("generation",), (
        "Malformed JSON: Expecting ',' delimiter: line {n} column {m} (char {tokens})",
    ), "The model's reply was not a usable conversation. It will be generated again.", 2, 0.8),
    Scenario(ErrorType.DATABASE, ErrorCode.DB_LOCKED, "error", True, "retry", ("store", "batch_worker", "drafts"), (
        "db_locked: database is locked (batch item {n}, waited {secs}s)",
    ), "The database could not be reached. Your work is kept and will be saved shortly.", 4, 0.95),
    Scenario(ErrorType.DATABASE, ErrorCode.DB_CONNECTION, "error", True, "retry", ("store", "batch_worker", "drafts"), (
        'db_connection: connection to server at "10.1.{n}.{m}", port 5432 failed: Connection refused',
        "db_connection: server closed the connection unexpectedly (pid {tokens})",
    ), "The database could not be reached. Your work is kept and will be saved shortly.", 2, 0.6),
    Scenario(ErrorType.DATABASE, ErrorCode.DUPLICATE_KEY, "error", False, "contact_support", ("store", "batch_worker"), (
        "duplicate_key: UNIQUE constraint failed: conversations.batch_id, conversations.item_index (item {n})",
    ), "The data conflicts with what is already saved; nothing was changed.", 1),
    Scenario(ErrorType.VALIDATION, ErrorCode.INVALID_INPUT, "info", False, "fix_input", ("page.generate", "page.batches"), (
        "Turns must be between 2 and 40, got {tokens}",
        "Template {template!r} has an unknown placeholder {{field_{n}}}",
        "Batch count must be between 1 and 100000, got {tokens}",
    ), "Some input is not valid. Please correct it and try again.", 6, 0.0, 0.0),
    Scenario(ErrorType.UI, ErrorCode.INTERNAL, "error", False, "contact_support", ("page.generate", "page.batches", "drafts"), (
        "KeyError: 'turn_{n}'",
        "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int' (row {tokens})",
    ), "Something went wrong on this page. The error has been recorded.", 2, 0.0, 0.1),
    Scenario(ErrorType.API, ErrorCode.RATE_LIMITED, "debug", True, "retry", ("claude_client",), (
        "Rate limiter paused {ms} ms to stay under {rpm} requests per minute",
    ), "The rate limit was reached. The request will be retried.", 3, 1.0),
)

_COLUMNS = (
    "error_id", "created_at", "error_type", "error_code", "severity", "message", "user_message", "context",
    "component", "request_id", "operation_id", "attempt", "fingerprint", "user_id", "session_id", "environment",
    "is_recoverable", "recovery_action", "recovered", "resolved", "resolved_at", "resolved_by",
)


_FIELDS: dict[str, Callable[[random.Random], Any]] = {
    "req": lambda r: f"req_{r.getrandbits(96):024x}",
    "n": lambda r: r.randint(1, 250),
    "m": lambda r: r.randint(1, 250),
    "secs": lambda r: r.randint(1, 120),
    "ms": lambda r: r.randint(1, 999),
    "tokens": lambda r: r.randint(10, 9000),
    "turns": lambda r: r.choice((4, 6, 8, 10, 12, 20)),
    "rpm": lambda r: r.choice((50, 1000, 4000)),
    "template": lambda r: r.choice(_TEMPLATES),
}


def _template_fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))


def _rows(count: int, days: float, rng: random.Random, now: datetime,
          fp: Callable[[str, str, str, str], str], owners: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    span = days * 86400.0
    # the draw that named a row's user picks one of len(_USERS) slots: the first slots are the owners
    owner_of: dict[str, str | None] = {name: owners[i] if i < len(owners) else None for i, name in enumerate(_USERS)}
    # time order, as a recorder would write them, so ids follow created_at
    offsets = sorted((rng.random() * span for _ in range(count)), reverse=True)
    scenarios = rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS], k=count)
    fields = {t: _template_fields(t) for sc in SCENARIOS for t in sc.messages}
    batches = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(1, min(5000, count // 200)))]
    sessions = [f"{rng.getrandbits(64):016x}" for _ in range(max(1, min(2000, count // 50)))]
    environment = get_settings().environment
    # The recorder's fingerprint ignores numbers, ids and quoted text, which is all that varies
    # within one template here, so one call per (template, component) gives every row's value
    # (tests/integration/test_errorlog_queries.py checks seeded rows against fingerprint()).
    fingerprints: dict[tuple[int, str, str], str] = {}
    random_, getrandbits, choice, randint = rng.random, rng.getrandbits, rng.choice, rng.randint
    for offset, sc in zip(offsets, scenarios, strict=True):
        created = now - timedelta(seconds=offset)
        template = choice(sc.messages)
        values = {name: _FIELDS[name](rng) for name in fields[template]}
        message = template.format(**values)
        component = choice(sc.components)
        key = (id(sc), template, component)
        fingerprint_ = fingerprints.get(key)
        if fingerprint_ is None:
            fingerprint_ = fingerprints[key] = fp(sc.error_type, sc.code, component, message)
        resolved = offset > 3 * 86400 and random_() < 0.15
        # drawn in the order the row's columns were, so a seed gives the rows it always gave
        error_id = new_error_id(int(created.timestamp() * 1000), getrandbits(80))
        context = {"model": choice(_MODELS), "template": values.get("template") or choice(_TEMPLATES),
                   "turns": values.get("turns") or randint(2, 40)}
        request_id = values.get("req") or (f"req_{getrandbits(96):024x}" if sc.error_type == ErrorType.API else None)
        batch_id = choice(batches) if random_() < sc.in_batch_share else None
        attempt = randint(1, _SEEDED_ATTEMPTS) if sc.recoverable else 1
        user, session = owner_of[choice(_USERS)], choice(sessions)
        recovered = random_() < sc.recovered_share
        yield (
            error_id, created, sc.error_type, sc.code, sc.severity, message,
            _seeded_user_message(sc, attempt, recovered), context, component, request_id, batch_id, attempt,
            fingerprint_, user, session, environment, sc.recoverable, sc.action, recovered, resolved,
            created + timedelta(hours=randint(1, 48)) if resolved else None,
            owner_of[choice(_USERS)] if resolved else None,
        )


_SEEDED_ATTEMPTS = 4  # the default retry_max_attempts: a seeded row's attempt is 1..4


def _seeded_user_message(sc: Scenario, attempt: int, recovered: bool) -> str:
    """What the app would have written: the last of the attempts, not recovered, says it gave up."""
    if sc.recoverable and not recovered and attempt == _SEEDED_ATTEMPTS:
        return gave_up_text(sc.user_message, attempt)
    return sc.user_message


def _recorder_fingerprint(error_type: str, code: str, component: str, message: str) -> str:
    return fingerprint(error_type, code, component, message)


def seed_errors(engine: Engine, count: int, *, days: float = 30, seed: int = 0, now: datetime | None = None,
                owners: Sequence[str] = ()) -> int:
    """Insert `count` synthetic rows spread over the last `days`; returns the number written.

    `owners` (app_users ids, at most one per name in _USERS): each owns 1/12 of the rows
    (user_id) and resolves 1/12 of the resolved ones; the other rows are nobody's (the system's).

    Written in chunks (settings.log_seed_chunk_rows), one write transaction per chunk, through
    the driver's bulk path (COPY on Postgres, multi-row INSERTs on SQLite). On SQLite the
    connection's page cache is raised for the run (settings.log_seed_sqlite_cache_mb) and put
    back after: a million rows update ten indexes at random places, and a 2 MB cache thrashes.
    """
    settings = get_settings()
    limit = settings.log_seed_max_rows
    if not isinstance(count, int) or not 1 <= count <= limit:
        raise ValidationError(f"count must be a whole number from 1 to {limit}.", field="count",
                              user_message=f"count must be a whole number from 1 to {limit}.")
    if not days > 0:
        raise ValidationError("days must be > 0.", field="days", user_message="days must be > 0.")
    rng = random.Random(seed)
    if len(owners) > len(_USERS):
        raise ValidationError(f"at most {len(_USERS)} owners.", field="owners",
                              user_message=f"at most {len(_USERS)} owners.")
    rows = _rows(count, days, rng, now or datetime.now(UTC), _recorder_fingerprint, tuple(owners))
    written = 0
    # write transactions as write_tx makes them (BEGIN IMMEDIATE on SQLite), on one connection
    # as the system: it writes everyone's rows, and COPY cannot run under Row Level Security
    with engine.connect().execution_options(sqlite_immediate=True, **{AS_ACTOR: system_actor()}) as conn:
        previous_cache = None
        if is_sqlite(conn):
            previous_cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA cache_size={-1024 * settings.log_seed_sqlite_cache_mb}")
            conn.commit()
        try:
            while written < count:
                chunk = [next(rows) for _ in range(min(settings.log_seed_chunk_rows, count - written))]
                with conn.begin():
                    written += bulk_insert(conn, error_logs, _COLUMNS, chunk)
        finally:
            if previous_cache is not None:
                conn.rollback()
                conn.exec_driver_sql(f"PRAGMA cache_size={int(previous_cache)}")
                conn.commit()
    return written
