"""Engine factory: one place that knows how to connect to SQLite or Postgres/Supabase."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from core.auth.claims import AS_LOGIN_ROLE, install_claims
from core.config import get_settings
from core.process_wide import ProcessWide
from core.store.files import private_file

__all__ = ["create_store_engine", "get_engine", "limit_sqlite_cache", "ping", "reset_engine",
           "SUPABASE_TRANSACTION_POOLER_PORT"]

# Supabase's transaction pooler (Supavisor, port 6543) cannot keep prepared statements.
SUPABASE_TRANSACTION_POOLER_PORT = 6543


def create_store_engine(url: str) -> Engine:
    """A configured engine for `url` (sqlite:///path or postgresql+psycopg://...)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            private_file(parsed.database)  # before SQLite creates it (and its -wal, -shm) world-readable
        busy_timeout_s = get_settings().sqlite_busy_timeout_s
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # our "begin" listener owns transaction start; pysqlite's implicit BEGIN is off
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # results are durable the moment a transaction commits
            cur.execute("PRAGMA synchronous=FULL")
            settings = get_settings()
            cur.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_s * 1000)}")
            cache_mb = settings.sqlite_cache_mb
            if cache_mb:
                cur.execute(f"PRAGMA cache_size={-1024 * int(cache_mb)}")  # negative: KiB, not pages
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # a write transaction takes the write lock at BEGIN, so it waits (busy_timeout)
            # instead of failing on a read-to-write lock upgrade; reads stay concurrent
            if conn.get_execution_options().get("sqlite_immediate"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.port == SUPABASE_TRANSACTION_POOLER_PORT:
            engine = create_engine(parsed, poolclass=NullPool, connect_args={"prepare_threshold": None})
            install_claims(engine)
            return engine
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
        install_claims(engine)
        idle_ms = int(get_settings().db_idle_in_transaction_timeout_s * 1000)
        if idle_ms:
            @event.listens_for(engine, "connect")
            def _pg_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                # a session, not the server: the transaction pooler above keeps its own idle timeout
                dbapi_conn.execute(f"SET idle_in_transaction_session_timeout = {idle_ms}")
                dbapi_conn.commit()
        return engine
    raise ValueError(f"Unsupported DATABASE_URL scheme: {parsed.drivername}")


_engines: ProcessWide[Engine] = ProcessWide(close=Engine.dispose)


def limit_sqlite_cache(engine: Engine, cache_mb: int) -> None:
    """Give each of this SQLite engine's connections a page cache of `cache_mb` from now on (0: no change).

    For a process that writes far more than it reads again (a stand-alone batch worker): the
    app's cache, sized for the error log's indexes, fills with pages the worker never reads
    again, one cache per pooled connection. Open connections are closed, so all take it.
    """
    if not cache_mb or engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _cache(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA cache_size={-1024 * int(cache_mb)}")  # after the engine's own listener
        cur.close()

    engine.dispose()


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the configured database)."""
    key = url or get_settings().effective_database_url
    return _engines.get(key, lambda: create_store_engine(key))


def ping(engine: Engine) -> str:
    """Ask the database for one row; says which kind answered (raises if none does)."""
    # as the login role: it answers before the migration has made the roles a transaction switches to
    with engine.connect().execution_options(**{AS_LOGIN_ROLE: True}) as conn:
        conn.exec_driver_sql("SELECT 1")
    return f"{engine.dialect.name} reachable"


def reset_engine() -> None:
    _engines.clear()
