"""run_db on real databases: transient failures are retried whole, constraint violations are not, nothing half-applies."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from core.config import override_settings
from core.errors import DatabaseError
from core.resilience import CircuitOpenError, get_breaker, reset_breakers, run_db
from core.store.schema import app_settings
from core.store.tx import write_tx


class Saboteur:
    """Makes a write fail the way a real outage does: a locked SQLite file or a killed Postgres backend."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._holder: sqlite3.Connection | None = None
        self._admin: Engine | None = None
        if self.sqlite:
            # a short busy timeout, so a locked file fails the attempt in milliseconds
            event.listen(engine, "connect", _short_busy_timeout)
            engine.dispose()
        else:
            self._admin = create_engine(engine.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def lock(self) -> None:
        """SQLite: another connection takes the write lock and keeps it."""
        if self.sqlite and self._holder is None:
            self._holder = sqlite3.connect(self.engine.url.database, isolation_level=None, check_same_thread=False)
            self._holder.execute("BEGIN IMMEDIATE")

    def unlock(self) -> None:
        if self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None

    def break_connection(self, conn: Connection) -> None:
        """Postgres: a second connection terminates this transaction's backend."""
        if self._admin is not None:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with self._admin.connect() as admin:
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")

    def close(self) -> None:
        self.unlock()
        if self._admin is not None:
            self._admin.dispose()


def _short_busy_timeout(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.execute("PRAGMA busy_timeout=50")


@pytest.fixture
def saboteur(engine: Engine) -> Iterator[Saboteur]:
    reset_breakers()
    s = Saboteur(engine)
    yield s
    s.close()
    reset_breakers()


def keys(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(app_settings.c.key)).scalars())


def put(conn: Connection, key: str) -> None:
    conn.execute(app_settings.insert().values(key=key, value="v"))


class FailsOnce:
    """A store unit that meets the outage on its first attempt and ends it before the second."""

    def __init__(self, engine: Engine, saboteur: Saboteur, key: str) -> None:
        self.engine, self.saboteur, self.key = engine, saboteur, key
        self.attempts = 0

    def __call__(self) -> int:
        self.attempts += 1
        if self.attempts > 1:
            self.saboteur.unlock()
        with write_tx(self.engine) as conn:
            put(conn, self.key)
            if self.attempts == 1:
                self.saboteur.break_connection(conn)
        return self.attempts


def test_a_dropped_or_locked_database_is_retried_and_the_unit_succeeds(engine: Engine, saboteur: Saboteur) -> None:
    """The first attempt meets a lock or a killed connection; the retry re-runs the whole unit once."""
    attempts = 0

    def save_pair() -> str:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            saboteur.unlock()  # the outage is over
        with write_tx(engine) as conn:
            put(conn, "a")
            if attempts == 1:
                saboteur.break_connection(conn)
            put(conn, "b")
        return "saved"

    saboteur.lock()
    assert run_db(save_pair) == "saved"
    assert attempts == 2
    assert keys(engine) == {"a", "b"}
    snap = get_breaker("database").snapshot()
    assert snap["state"] == "closed" and snap["failures"] == 1


def test_a_retried_database_error_that_recovered_leaves_one_info_row(engine: Engine, saboteur: Saboteur) -> None:
    """A unit that succeeds after a lock or a killed connection leaves an info row marked recovered; a clean one none."""
    from core.errorlog import flush
    from core.store.schema import error_logs

    save = FailsOnce(engine, saboteur, "flaky")
    saboteur.lock()
    run_db(save)
    run_db(lambda: keys(engine))  # no failure: nothing to record
    assert flush(30)
    with engine.connect() as conn:
        rows = conn.execute(select(error_logs.c.component, error_logs.c.severity, error_logs.c.recovered,
                                   error_logs.c.error_type, error_logs.c.attempt, error_logs.c.context)).all()
    assert len(rows) == 1, rows
    component, severity, recovered, error_type, attempt, context = rows[0]
    assert (component, severity, recovered, error_type, attempt) == ("store", "info", True, "database", 2)
    assert "recovered_after_failures" in str(context) and "FailsOnce" in str(context)


def test_a_unique_violation_is_not_retried_and_leaves_no_partial_rows(engine: Engine, saboteur: Saboteur) -> None:
    """A duplicate key fails after one attempt, classified, and the unit's earlier insert is rolled back."""
    with write_tx(engine) as conn:
        put(conn, "taken")
    attempts = 0

    def save_pair() -> None:
        nonlocal attempts
        attempts += 1
        with write_tx(engine) as conn:
            put(conn, "fresh")
            put(conn, "taken")

    with pytest.raises(DatabaseError) as info:
        run_db(save_pair)
    assert attempts == 1
    assert info.value.code == "duplicate_key" and not info.value.is_recoverable
    assert isinstance(info.value.__cause__, sa_exc.IntegrityError)
    assert keys(engine) == {"taken"}
    assert get_breaker("database").snapshot()["failures"] == 0  # a constraint says nothing about health


def test_a_lasting_outage_gives_up_then_opens_the_breaker(engine: Engine, saboteur: Saboteur) -> None:
    """Every attempt failing ends after db_retry_max_attempts with nothing saved; the breaker then fails fast."""
    override_settings(db_retry_max_attempts=3, breaker_failure_threshold=3)
    attempts = 0

    def save_one() -> None:
        nonlocal attempts
        attempts += 1
        with write_tx(engine) as conn:
            put(conn, f"row{attempts}")
            saboteur.break_connection(conn)
            put(conn, f"second{attempts}")

    saboteur.lock()
    with pytest.raises(DatabaseError) as info:
        run_db(save_one)
    assert attempts == 3
    assert info.value.is_recoverable
    saboteur.unlock()
    assert keys(engine) == set()

    called = False

    def anything() -> None:
        nonlocal called
        called = True

    with pytest.raises(CircuitOpenError) as refused:
        run_db(anything)
    assert not called
    assert refused.value.error_type == "database"


@pytest.mark.postgres
def test_a_session_left_idle_in_a_transaction_by_a_stopped_worker_loses_its_locks(pg_databases) -> None:
    """A transaction whose client stopped mid-way is ended by Postgres, so its row locks stop blocking the others."""
    import time

    from core.store import create_store_engine, migrate
    from core.store.schema import utcnow

    override_settings(db_idle_in_transaction_timeout_s=1.0)
    stopped, other = create_store_engine(pg_databases.new()), None
    try:
        migrate(stopped, force=True)
        other = create_store_engine(stopped.url.render_as_string(hide_password=False))
        with write_tx(other) as conn:
            conn.execute(app_settings.insert().values(key="k", value="0", updated_at=utcnow()))
        held = stopped.connect()
        held.begin()
        held.execute(app_settings.update().values(value="held"))  # the row lock a stopped worker keeps
        started = time.monotonic()
        with write_tx(other) as conn:  # waits for the lock until the server ends the idle session
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")  # without that end: fail, do not hang
            conn.execute(app_settings.update().values(value="other"))
        assert time.monotonic() - started < 10
        with other.connect() as conn:
            assert conn.execute(select(app_settings.c.value)).scalar_one() == "other"
        with pytest.raises(sa_exc.DBAPIError):  # the stopped worker's session is gone; it reconnects next time
            held.execute(select(app_settings.c.value))
        held.close()
    finally:
        stopped.dispose()
        if other is not None:
            other.dispose()
