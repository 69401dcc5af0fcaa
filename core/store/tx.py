"""Transactions: one unit of work commits whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

__all__ = ["write_tx", "read_conn"]


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on exit, rolled back whole on any exception.

    On SQLite it begins IMMEDIATE (takes the write lock first), so concurrent writers
    queue on busy_timeout instead of failing mid-transaction.
    """
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_conn(engine: Engine) -> Iterator[Connection]:
    """A read-only connection (one snapshot per statement batch)."""
    with engine.connect() as conn:
        yield conn
