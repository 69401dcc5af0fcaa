"""Transactions: one unit of work commits whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from core.auth.actor import Actor
from core.auth.claims import AS_ACTOR

__all__ = ["write_tx", "read_conn"]


@contextmanager
def write_tx(engine: Engine, *, actor: Actor | None = None) -> Iterator[Connection]:
    """A write transaction: committed on exit, rolled back whole on any exception.

    On SQLite it begins IMMEDIATE (takes the write lock first), so concurrent writers
    queue on busy_timeout instead of failing mid-transaction. `actor`: whom it runs as on
    Postgres (default: the actor of the running code).
    """
    options: dict[str, object] = {"sqlite_immediate": True}
    if actor is not None:
        options[AS_ACTOR] = actor
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


@contextmanager
def read_conn(engine: Engine, *, actor: Actor | None = None) -> Iterator[Connection]:
    """A read-only connection (one snapshot per statement batch), as `actor` (default: the running code's)."""
    conn = engine.connect()
    if actor is not None:
        conn = conn.execution_options(**{AS_ACTOR: actor})
    with conn:
        yield conn
