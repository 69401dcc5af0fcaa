"""Shared fixtures: isolated settings per test, a migrated store on SQLite and on Postgres, and the sandbox.

Every test that takes `engine` runs twice: on a fresh SQLite file and on a fresh Postgres
database (marked `postgres`), cloned from a template migrated once per session. If Postgres
is unreachable those tests fail; they never skip. Under pytest-xdist every worker is a session
of its own: its own sandbox server, template and databases (their names carry the worker id).

`sandbox` is one sandbox server for the whole session, set for each test to its module's
`SANDBOX` config (defaults otherwise) with fresh counters, limits and fault sequence.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from isolation import isolate_environment
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.auth.actor import forget_actor
from core.auth.local import forget_local_user, use_local_user_by_default
from core.config import reload_settings
from core.errorlog import reset_recorder
from core.llm.client import reset_client
from core.llm.sandbox import SandboxConfig, SandboxServer
from core.resilience import reset_breakers, reset_rate_limiters
from core.store import create_store_engine, migrate, reset_engine

PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# under pytest-xdist each worker is its own session with its own databases (and template); "gw0", "gw1", ...
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    """Each test gets its own data dir, test environment and instant retries."""
    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("STUDIO_RETRY_INSTANT", "true")
    reset_recorder()  # empty error-log queue, ring and counters; writer follows this test's database
    reload_settings()
    reset_engine()
    forget_local_user()  # the local user is resolved again in this test's own database
    forget_actor()  # an AppTest run sets the session's person in this thread: it must not act in the next test
    use_local_user_by_default()  # an app run with sign-in configured made it nobody, process-wide
    yield
    reset_recorder()  # stop the writer before the test's engines go away
    reset_engine()
    # the settings kept for what runs before the next test's setup (the next module's fixtures) are
    # the isolated ones, not this test's own setenv: a STUDIO_USER set here once made the next
    # module seed its rows as that person, whom the app's local user could not see
    monkeypatch.undo()
    isolate_environment(monkeypatch, tmp_path)
    reload_settings()
    forget_local_user()
    forget_actor()
    # and after: the next module's fixtures (its seeded rows, say) run before this hook's next setup
    use_local_user_by_default()


@pytest.fixture(autouse=True)
def fresh_resilience() -> Iterator[None]:
    """Each test starts with closed circuit breakers and fresh rate limiters (they are process-wide)."""
    reset_breakers()
    reset_rate_limiters()
    yield
    reset_breakers()
    reset_rate_limiters()


class PostgresDatabases:
    """Creates throw-away databases on the local server; drops them at the end of the session.

    A DROP DATABASE waits for a checkpoint of the whole server (PostgreSQL 15): dropping them
    one by one took 15 s, and during the run it would slow the tests' own I/O. At the end, eight
    at a time, concurrent drops share their checkpoints.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._admin: Engine | None = None
        self._template: str | None = None

    def admin(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def new(self, *, migrated: bool = False) -> str:
        """The URL of a new database: empty, or a copy of the template migrated to head."""
        template = self._migrated_template() if migrated else None
        return self._url(self._create(template))

    def _create(self, template: str | None) -> str:
        name = f"studio_test_{XDIST_WORKER}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        self.created.append(name)
        return name

    def _drop(self, name: str) -> None:
        with self.admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _migrated_template(self) -> str:
        if self._template is None:
            name = self._create(None)
            eng = create_store_engine(self._url(name))
            migrate(eng, force=True)
            eng.dispose()  # a template being copied must have no other session
            self._template = name
        return self._template

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="pg-drop") as pool:
            list(pool.map(self._drop, self.created))
        self._admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    dbs = PostgresDatabases(PG_ADMIN_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, monkeypatch) -> str:
    """A fresh, empty database URL on each engine; also set as DATABASE_URL for the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'studio.db'}"
    else:
        url = request.getfixturevalue("pg_databases").new(migrated="engine" in request.fixturenames)
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    reset_engine()
    return url


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    """A migrated engine on SQLite and on Postgres (there a copy of the migrated template)."""
    eng = create_store_engine(database_url)
    migrate(eng, force=True)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The session's sandbox server; `sandbox` sets it up for each test."""
    srv = SandboxServer()
    yield srv
    srv.stop()


@pytest.fixture
def sandbox(sandbox_server, request, monkeypatch) -> Iterator[SandboxServer]:
    """The sandbox at its module's `SANDBOX` config, counters and limits fresh; the app's model URL and env.

    A module's `SANDBOX_ENV` (settings as environment variables) is applied too. A test may stop
    the server; the next test starts it again.
    """
    wanted: dict[str, Any] = getattr(request.module, "SANDBOX", {})
    config = SandboxConfig(**wanted).to_dict()
    sandbox_server.start()
    sandbox_server.configure(**{k: v for k, v in config.items() if k not in ("host", "port")})
    sandbox_server.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sandbox_server.base_url)
    for key, value in getattr(request.module, "SANDBOX_ENV", {}).items():
        monkeypatch.setenv(key, value)
    reload_settings()
    reset_client(), reset_breakers(), reset_rate_limiters()
    yield sandbox_server
    reset_client(), reset_breakers(), reset_rate_limiters()
