"""A throw-away Postgres database for a benchmark, on the server of STUDIO_TEST_PG_URL (default: the local test server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["PG_ADMIN_URL", "scratch_database", "server_version"]

PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def server_version() -> str:
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            return str(conn.execute(text("SELECT version()")).scalar_one()).split(" on ")[0]
    finally:
        admin.dispose()


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """The URL of a new, empty database named after `prefix`; dropped afterwards unless `keep`."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
