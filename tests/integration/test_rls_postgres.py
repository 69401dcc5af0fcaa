"""Postgres Row Level Security, proved by SQL as the app's own login role: a non-superuser that owns the tables.

No service, no `where()`: each transaction sets the claims and the role itself, as
core.auth.claims does (`set_config('request.jwt.claims', ..., true)`, `set local role
authenticated`), then reads or writes the tables directly, so what it sees is what the
policies of migrations 0011 and 0012 allow and nothing else. The database is made and migrated
by a login role created here without superuser, CREATEROLE or BYPASSRLS (like an app's role on
a hosted Postgres), so the tables are its own and FORCE is what subjects it to RLS.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from isolation import isolate_environment
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.auth import ANONYMOUS, Actor, Role
from core.config import reload_settings
from core.errors import DatabaseError
from core.store import create_store_engine, migrate, reset_engine
from core.store import schema as s
from core.store.tx import read_conn

pytestmark = pytest.mark.postgres

PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_TAG = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"

# every table RLS guards, and the column naming its row (the owner's column, where it has one)
OWNED_TABLES = ("batch_jobs", "batch_items", "batch_resumes", "conversations", "conversation_drafts",
                "recovery_checkpoints", "error_logs", "audit_events", "app_users", "app_settings",
                "error_log_rollup", "templates", "template_versions", "review_decisions", "message_batch_submissions")
KEY = {"batch_jobs": "id", "batch_items": "batch_id", "batch_resumes": "batch_id", "conversations": "id",
       "conversation_drafts": "id", "recovery_checkpoints": "operation_id", "error_logs": "error_id",
       "audit_events": "target_id", "app_users": "id"}
PERSONAL = tuple(KEY)  # a row of these is one person's
# a column B may try to change on A's row, and the value
TOUCH = {"batch_jobs": ("name", "'taken'"), "batch_items": ("status", "'done'"),
         "batch_resumes": ("previous_status", "'failed'"), "conversations": ("status", "'bad'"),
         "conversation_drafts": ("status", "'discarded'"), "recovery_checkpoints": ("completed_count", "99"),
         "error_logs": ("resolved", "true"), "app_users": ("role", "'admin'")}
# the column that says whose a row is, for giving one's own row away
OWNER = {"batch_jobs": "owner_id", "conversations": "owner_id", "conversation_drafts": "user_id",
         "recovery_checkpoints": "owner_id", "error_logs": "user_id", "batch_items": "batch_id",
         "batch_resumes": "batch_id"}
VIOLATION = "new row violates row-level security policy"


@dataclass(frozen=True)
class World:
    """The database, its login role, and the people and rows made in it."""

    url: str
    login: str
    engine: Engine  # plain SQLAlchemy as the login role: no claims, no role switch of its own
    a: Actor
    b: Actor
    reviewer: Actor
    admin: Actor

    def key_of(self, who: Actor, table: str) -> str:
        """The key of `who`'s row in `table` (their batch's, for items and resumes)."""
        assert who.user_id is not None
        if table == "app_users":
            return who.user_id
        if table in ("batch_items", "batch_resumes", "audit_events"):
            table = "batch_jobs"
        return f"{table[:4]}-{who.user_id[:18]}"  # ids are 36 characters at most


def _admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def login_role(name: str) -> Iterator[tuple[Engine, str]]:
    """A login role `name` with no attributes (no superuser, CREATEROLE, BYPASSRLS) owning a fresh database
    of that name: (the superuser's engine, the role's URL). Both are dropped afterwards."""
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEROLE NOBYPASSRLS'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
    try:
        yield admin, make_url(PG_ADMIN_URL).set(username=name, database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def _isolated(tmp: Any) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        isolate_environment(mp, tmp)
        reload_settings()
        reset_engine()
        try:
            yield
        finally:
            reset_engine()
    reload_settings()


@contextmanager
def as_(world: World, who: Actor | None, role: str = "authenticated") -> Iterator[Connection]:
    """One transaction as the login role that switched to `role` with `who`'s claims (None: no claims at all)."""
    with world.engine.connect() as conn, conn.begin():
        if who is not None:
            conn.execute(text("select set_config('request.jwt.claims', :claims, true)"),
                         {"claims": json.dumps(who.claims())})
        conn.execute(text(f"set local role {role}"))
        yield conn


def _count(conn: Connection, table: str, where: str = "true", **params: Any) -> int:
    return int(conn.execute(text(f"select count(*) from {table} where {where}"), params).scalar_one())


def _rows_of(world: World, who: Actor) -> dict[str, list[dict[str, Any]]]:
    """One row per personal table owned by `who` (their batch, its item and resume, ...)."""
    uid = who.user_id
    batch = world.key_of(who, "batch_items")
    return {
        "batch_jobs": [dict(id=batch, template="t", model="m", config={}, total_items=1, owner_id=uid)],
        "batch_items": [dict(batch_id=batch, item_index=0, params={}, owner_id=uid)],
        "batch_resumes": [dict(batch_id=batch, resumed_by=uid)],
        "conversations": [dict(id=world.key_of(who, "conversations"), template="t", model="m", params={}, turns=[],
                               turn_count=0, owner_id=uid, batch_id=batch)],
        "conversation_drafts": [dict(id=world.key_of(who, "conversation_drafts"), user_id=uid, template="t",
                                     params={})],
        "recovery_checkpoints": [dict(operation_type="batch", operation_id=world.key_of(who, "recovery_checkpoints"),
                                      owner_id=uid)],
        "error_logs": [dict(error_id=world.key_of(who, "error_logs"), error_type="api", error_code="timeout",
                            severity="error", message=f"error of {uid}", fingerprint="f", user_id=uid)],
        "audit_events": [dict(actor_id=uid, actor_label="x", action="batch.create", target_kind="batch",
                              target_id=batch)],
        "review_decisions": [dict(conversation_id=world.key_of(who, "conversations"), decision="accepted",
                                  reviewer_id=uid)],
        "message_batch_submissions": [dict(id=world.key_of(who, "message_batch_submissions"), batch_id=batch,
                                           item_indexes=[0], request_count=1)],
    }


def _insert(conn: Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute(s.metadata.tables[table].insert().values(**row))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """A database migrated by its own non-superuser login role (granted the two roles first), with rows of A and B."""
    login = f"studio_app_{_TAG}"
    with login_role(login) as (admin, url):
        with admin.connect() as conn:  # what an operator runs when the login role may not grant it itself
            conn.execute(text(f'GRANT authenticated, service_role TO "{login}"'))
        engine = create_engine(url)
        with _isolated(tmp_path_factory.mktemp("rls")):
            app = create_store_engine(url)
            migrate(app, force=True)
            app.dispose()
        people = {}
        with engine.connect() as conn, conn.begin():
            conn.execute(text("set local role service_role"))
            for name, role in (("a", Role.ANALYST), ("b", Role.ANALYST), ("reviewer", Role.REVIEWER),
                               ("admin", Role.ADMIN)):
                uid = str(uuid.uuid4())
                _insert(conn, "app_users", dict(id=uid, issuer="https://issuer.test", subject=name,
                                                email=f"{name}@example.com", role=role.value))
                people[name] = Actor(user_id=uid, role=role, email=f"{name}@example.com")
        w = World(url=url, login=login, engine=engine, **people)
        with engine.connect() as conn, conn.begin():
            conn.execute(text("set local role service_role"))
            for who in (w.a, w.b):
                for table, rows in _rows_of(w, who).items():
                    for row in rows:
                        _insert(conn, table, row)
            _insert(conn, "error_logs", dict(error_id="error_logs-nobody", error_type="api", error_code="timeout",
                                             severity="warn", message="the system's", fingerprint="g", user_id=None))
            _insert(conn, "app_settings", dict(key="retention_days_error", value="30", updated_by=w.admin.user_id))
        yield w
        engine.dispose()


def _everything(world: World, table: str) -> int:
    with world.engine.connect() as conn, conn.begin():
        conn.execute(text("set local role service_role"))
        return _count(conn, table)


# ---- the login role and what the migration did --------------------------------------------------------------


def test_the_login_role_owns_every_table_and_rls_is_enabled_and_forced_on_each(world):
    """Every guarded table is the login role's own, with RLS enabled and forced (so its owner is subject to it too)."""
    with world.engine.connect() as conn:
        rows = conn.execute(text(
            "select c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity, r.rolsuper "
            "from pg_class c join pg_roles r on r.oid = c.relowner "
            "where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'")).all()
    found = {name: (owner, enabled, forced, superuser) for name, owner, enabled, forced, superuser in rows}
    assert {t: found[t] for t in OWNED_TABLES} == {t: (world.login, True, True, False) for t in OWNED_TABLES}
    assert set(found) - set(OWNED_TABLES) == {"alembic_version"}


@pytest.mark.parametrize("table", OWNED_TABLES)
def test_the_login_role_itself_sees_no_rows(world, table):
    """Without switching role the owner reads nothing: FORCE applies the policies, and none is for it."""
    with world.engine.connect() as conn, conn.begin():
        assert _count(conn, table) == 0
    assert _everything(world, table) > 0


def test_a_login_role_that_may_not_grant_itself_the_roles_is_told_what_to_run(tmp_path):
    """The migration stops, rolled back whole, naming the GRANT to run; after an operator runs it, it completes."""
    login = f"studio_app_nogrant_{_TAG}"
    with login_role(login) as (admin, url), _isolated(tmp_path):
        app = create_store_engine(url)
        with pytest.raises(sa.exc.SQLAlchemyError) as refused:
            migrate(app, force=True)
        assert f"GRANT authenticated, service_role TO {login};" in str(refused.value)
        plain = create_engine(url)  # inspected as the login role, not through the app's role switch
        assert sa.inspect(plain).get_table_names() == []
        with admin.connect() as conn:
            conn.execute(text(f'GRANT authenticated, service_role TO "{login}"'))
        migrate(app, force=True)
        assert "app_users" in sa.inspect(plain).get_table_names()
        plain.dispose()
        app.dispose()


def test_the_app_on_a_login_role_without_the_grants_names_the_grant(tmp_path):
    """A transaction that cannot switch role fails with a message saying which GRANT is missing."""
    login = f"studio_app_ungranted_{_TAG}"
    with login_role(login) as (_admin_engine, url), _isolated(tmp_path):
        app = create_store_engine(url)
        with pytest.raises(DatabaseError) as refused, read_conn(app, actor=ANONYMOUS) as conn:
            conn.execute(text("select 1"))
        app.dispose()
    assert f"GRANT authenticated, service_role TO {login};" in refused.value.user_message


# ---- reading -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claims", ["none", "no sub"])
@pytest.mark.parametrize("table", OWNED_TABLES)
def test_signed_out_sees_no_rows(world, table, claims):
    """A transaction with no claims, or claims without a subject (a signed-out visitor), sees no row of any table."""
    with as_(world, None if claims == "none" else ANONYMOUS) as conn:
        assert _count(conn, table) == 0


@pytest.mark.parametrize("table", PERSONAL)
def test_a_sees_their_rows_and_b_none_of_them(world, table):
    """A sees A's row; B, another analyst, does not see it (and A does not see B's)."""
    col = KEY[table]
    with as_(world, world.a) as conn:
        assert _count(conn, table, f"{col} = :k", k=world.key_of(world.a, table)) == 1
        assert _count(conn, table, f"{col} = :k", k=world.key_of(world.b, table)) == 0
    with as_(world, world.b) as conn:
        assert _count(conn, table, f"{col} = :k", k=world.key_of(world.a, table)) == 0


@pytest.mark.parametrize("table", OWNED_TABLES)
def test_an_admin_and_service_role_see_every_row(world, table):
    """An admin's claims, and service_role without any, see every row: the same count as each other."""
    with as_(world, world.admin) as conn:
        seen_by_admin = _count(conn, table)
    with as_(world, None, role="service_role") as conn:
        seen_by_service = _count(conn, table)
    superuser = create_engine(make_url(PG_ADMIN_URL).set(database=world.login))
    with superuser.connect() as conn:
        everything = _count(conn, table)
    superuser.dispose()
    assert seen_by_admin == seen_by_service == everything > 0


def test_error_rows_with_no_user_are_seen_by_every_signed_in_person(world):
    """The system's error rows (no user) are shared: both analysts and the reviewer see them."""
    for who in (world.a, world.b, world.reviewer):
        with as_(world, who) as conn:
            assert _count(conn, "error_logs", "user_id is null") == 1
            assert _count(conn, "error_logs") == (2 if who.role is Role.ANALYST else 1)


def test_a_reviewer_sees_every_batch_and_conversation_but_nobody_elses_drafts(world):
    """A reviewer reads every batch, item and conversation (for review), but drafts and checkpoints stay their owners'."""
    with as_(world, world.reviewer) as conn:
        seen = {t: _count(conn, t) for t in ("batch_jobs", "batch_items", "batch_resumes", "conversations",
                                             "conversation_drafts", "recovery_checkpoints", "app_users")}
    assert seen == {"batch_jobs": 2, "batch_items": 2, "batch_resumes": 2, "conversations": 2,
                    "conversation_drafts": 0, "recovery_checkpoints": 0, "app_users": 1}


def test_only_an_admin_reads_the_rollup_and_every_signed_in_person_the_settings(world):
    """The rollup counts everyone's errors, so analysts read none of it; settings are everyone's to read."""
    with as_(world, world.a) as conn:
        assert (_count(conn, "error_log_rollup"), _count(conn, "app_settings")) == (0, 1)
    with as_(world, world.admin) as conn:
        assert _count(conn, "error_log_rollup") > 0


# ---- writing -------------------------------------------------------------------------------------------------


def _bs_attempt_at_as_row(world: World, table: str) -> dict[str, Any]:
    """A new row of `table` that would be A's (or, for people and settings, any row), written by B."""
    suffix = uuid.uuid4().hex[:8]
    rows = _rows_of(world, world.a)
    if table == "app_users":
        return dict(id=str(uuid.uuid4()), issuer="x", subject=suffix, role="admin")
    if table == "app_settings":
        return dict(key=f"k{suffix}", value="1")
    row = dict(rows[table][0])
    unique = {"batch_jobs": "id", "conversations": "id", "conversation_drafts": "id",
              "recovery_checkpoints": "operation_id", "error_logs": "error_id"}
    if table in unique:
        row[unique[table]] = f"{row[unique[table]]}-{suffix}"
    if table == "batch_items":
        row["item_index"] = 1
    if table == "conversations":
        row["batch_id"] = None
    return row


@pytest.mark.parametrize("table", [*PERSONAL, "app_settings"])
def test_b_cannot_insert_a_row_owned_by_a(world, table):
    """B's insert of a row that is A's (an item or resume in A's batch; any user or setting) violates a policy."""
    row = _bs_attempt_at_as_row(world, table)
    with pytest.raises(sa.exc.ProgrammingError, match=f'{VIOLATION} for table "{table}"'), as_(world, world.b) as conn:
        _insert(conn, table, row)


@pytest.mark.parametrize("table", [t for t in PERSONAL if t != "audit_events"])
def test_b_updating_as_row_changes_nothing(world, table):
    """B's UPDATE of A's row matches no row (the USING policy hides it): 0 rows, no error, A's row unchanged."""
    col, value = TOUCH[table]
    key = KEY[table]
    with as_(world, world.b) as conn:
        changed = conn.execute(text(f"update {table} set {col} = {value} where {key} = :k"),
                               {"k": world.key_of(world.a, table)}).rowcount
    assert changed == 0
    with as_(world, world.admin) as conn:
        assert _count(conn, table, f"{key} = :k and {col} = {value}", k=world.key_of(world.a, table)) == 0


@pytest.mark.parametrize("table", [t for t in PERSONAL if t not in ("audit_events", "app_users")])
def test_a_can_update_their_own_row(world, table):
    """The same UPDATE by A, on A's row, changes it (rolled back): the refusal above is B's alone."""
    col, value = TOUCH[table]
    with world.engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("select set_config('request.jwt.claims', :c, true)"), {"c": json.dumps(world.a.claims())})
        conn.execute(text("set local role authenticated"))
        changed = conn.execute(text(f"update {table} set {col} = {value} where {KEY[table]} = :k"),
                               {"k": world.key_of(world.a, table)}).rowcount
        tx.rollback()
    assert changed == 1


@pytest.mark.parametrize("table", list(OWNER))
def test_b_cannot_give_their_own_row_to_a(world, table):
    """B's UPDATE that would make B's row A's (or move B's item into A's batch) violates the WITH CHECK policy."""
    col = OWNER[table]
    new = world.key_of(world.a, "batch_items") if col == "batch_id" else world.a.user_id
    with pytest.raises(sa.exc.ProgrammingError, match=f'{VIOLATION} for table "{table}"'), as_(world, world.b) as conn:
        conn.execute(text(f"update {table} set {col} = :new where {KEY[table]} = :k"),
                     {"new": new, "k": world.key_of(world.b, table)})


def test_an_analyst_cannot_change_their_own_role(world):
    """A's UPDATE of A's own user row to admin matches nothing: only admins write users."""
    with as_(world, world.a) as conn:
        assert conn.execute(text("update app_users set role = 'admin' where id = :k"),
                            {"k": world.a.user_id}).rowcount == 0


@pytest.mark.parametrize("statement", ["update audit_events set action = 'x'", "delete from audit_events",
                                       "truncate audit_events"])
@pytest.mark.parametrize("who", ["a", "admin"])
def test_audit_events_cannot_be_changed_by_authenticated(world, statement, who):
    """Nobody signed in, not even an admin, may update, delete or truncate the audit trail: permission denied."""
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table audit_events"), \
            as_(world, getattr(world, who)) as conn:
        conn.execute(text(statement))


@pytest.mark.parametrize("statement", ["insert into error_log_rollup values ('2026-01-01 00', 'api', 'error', "
                                       "'x', false, false, false, 1)", "update error_log_rollup set n = 0"])
def test_people_cannot_write_the_rollup_themselves(world, statement):
    """Only the triggers keep the rollup: a person's own insert or update of it is refused."""
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table error_log_rollup"), \
            as_(world, world.admin) as conn:
        conn.execute(text(statement))


def test_an_analysts_resolve_keeps_the_rollup_equal_to_the_rows(world):
    """A resolving A's error moves its count in the rollup (the triggers run as their owner, not as A)."""
    with world.engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("select set_config('request.jwt.claims', :c, true)"), {"c": json.dumps(world.a.claims())})
        conn.execute(text("set local role authenticated"))
        assert conn.execute(text("update error_logs set resolved = true where error_id = :k"),
                            {"k": world.key_of(world.a, "error_logs")}).rowcount == 1
        conn.execute(text("set local role service_role"))
        rolled = dict(conn.execute(text("select resolved, sum(n) from error_log_rollup group by 1")).all())
        counted = dict(conn.execute(text("select resolved, count(*) from error_logs group by 1")).all())
        tx.rollback()
    assert rolled == counted == {True: 1, False: 2}


# ---- the claims of one transaction stay in it ----------------------------------------------------------------


def test_claims_do_not_outlive_their_transaction_on_a_pooled_connection(world):
    """On one connection, after A's transaction, the next one sees no claims and no rows, with or without the role."""
    with world.engine.connect() as conn:
        with conn.begin():
            conn.execute(text("select set_config('request.jwt.claims', :c, true)"), {"c": json.dumps(world.a.claims())})
            conn.execute(text("set local role authenticated"))
            assert _count(conn, "batch_jobs") == 1
        with conn.begin():
            assert conn.execute(text("select current_user, coalesce(current_setting('request.jwt.claims', true), '')"
                                     )).one() == (world.login, "")
            assert _count(conn, "batch_jobs") == 0
            conn.execute(text("set local role authenticated"))
            assert _count(conn, "batch_jobs") == 0


@pytest.mark.parametrize("role", ["authenticated", "service_role"])
def test_nobody_but_the_migration_writes_the_schema_revision(world, role):
    """The app's roles may read alembic_version but not change it."""
    with as_(world, world.admin, role=role) as conn:
        assert conn.execute(text("select count(*) from alembic_version")).scalar_one() == 1
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table alembic_version"), \
            as_(world, world.admin, role=role) as conn:
        conn.execute(text("update alembic_version set version_num = '0001'"))


def test_the_apps_pool_hands_the_next_transaction_none_of_the_last_ones_claims(world):
    """Through the app's engine: A's transaction, then a signed-out one on the same pooled connection, sees nothing."""
    app = create_store_engine(world.url)
    try:
        with read_conn(app, actor=world.a) as conn:
            first = conn.execute(text("select pg_backend_pid(), count(*) from batch_jobs")).one()
        with read_conn(app, actor=ANONYMOUS) as conn:
            second = conn.execute(text("select pg_backend_pid(), count(*), current_setting('request.jwt.claims')"
                                       " from batch_jobs")).one()
    finally:
        app.dispose()
    assert first[0] == second[0]  # the one connection of the pool, handed out twice
    assert (first[1], second[1], json.loads(second[2])) == (1, 0, ANONYMOUS.claims())


# ---- the error log's search view (0013) ----------------------------------------------------------------------

SEARCH_VIEW = "studio_private.error_log_search"


@pytest.mark.parametrize("claims", ["none", "no sub"])
def test_signed_out_sees_no_rows_through_the_search_view(world, claims):
    """The search view, though its owner bypasses RLS, shows a signed-out visitor no row (the system's neither)."""
    with as_(world, None if claims == "none" else ANONYMOUS) as conn:
        assert _count(conn, SEARCH_VIEW) == 0


def test_the_search_view_shows_each_person_the_rows_the_policy_does(world):
    """Through the view B sees their own row and the system's, none of A's; an admin every row: as error_logs shows them."""
    a_row, b_row = world.key_of(world.a, "error_logs"), world.key_of(world.b, "error_logs")
    seen = {}
    for who in (world.a, world.b, world.reviewer, world.admin):
        with as_(world, who) as conn:
            ids = set(conn.execute(text(f"select error_id from {SEARCH_VIEW}")).scalars())
            assert ids == set(conn.execute(text("select error_id from error_logs")).scalars())
            seen[who.email] = ids
    assert seen["b@example.com"] == {b_row, "error_logs-nobody"}
    assert seen["a@example.com"] == {a_row, "error_logs-nobody"}
    assert seen["reviewer@example.com"] == {"error_logs-nobody"}
    assert seen["admin@example.com"] == {a_row, b_row, "error_logs-nobody"}
    assert _everything(world, "error_logs") == 3


@pytest.mark.parametrize("statement", [
    "insert into studio_private.error_log_search (error_id, error_type, error_code, severity, message, fingerprint)"
    " values ('x', 'api', 'timeout', 'error', 'm', 'f')",
    "update studio_private.error_log_search set resolved = true",
    "delete from studio_private.error_log_search"])
@pytest.mark.parametrize("who", ["b", "admin"])
def test_the_search_view_cannot_be_written(world, statement, who):
    """Not even an admin may insert, update or delete through the view (it would write with its owner's rights)."""
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for view error_log_search"), \
            as_(world, getattr(world, who)) as conn:
        conn.execute(text(statement))


def test_only_authenticated_may_read_the_search_view(world):
    """`authenticated` may select from the view and nothing more; anon and PUBLIC may not even reach its schema."""
    view = "studio_private.error_log_search"
    with world.engine.connect() as conn:
        granted = {(role, right): conn.execute(text(f"select has_table_privilege('{role}', '{view}', '{right}')"
                                                    )).scalar_one()
                   for role in ("authenticated", "anon") for right in ("SELECT", "INSERT", "UPDATE", "DELETE")}
        schema = {role: conn.execute(text(f"select has_schema_privilege('{role}', 'studio_private', 'USAGE')"
                                          )).scalar_one() for role in ("authenticated", "anon", "public")}
    assert [k for k, v in granted.items() if v] == [("authenticated", "SELECT")]
    assert schema == {"authenticated": True, "anon": False, "public": False}


def test_the_search_view_has_every_column_of_error_logs_and_its_condition_is_the_select_policys(world):
    """The view's columns are error_logs' (a new column needs the view made again), and it filters by the policy's USING."""
    with world.engine.connect() as conn:
        columns = [list(conn.execute(text(
            "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
            "order by ordinal_position"), {"s": schema, "t": name}).scalars())
            for schema, name in (("public", "error_logs"), ("studio_private", "error_log_search"))]
        policy = conn.execute(text("select qual from pg_policies where tablename = 'error_logs' "
                                   "and policyname = 'error_logs_select'")).scalar_one()
        view = conn.execute(text("select pg_get_viewdef('studio_private.error_log_search'::regclass)")).scalar_one()
        owner, options = conn.execute(text("select pg_get_userbyid(relowner), reloptions from pg_class "
                                           "where oid = 'studio_private.error_log_search'::regclass")).one()
    assert columns[0] == columns[1] and "message" in columns[0]
    assert view.split("WHERE")[1].strip().rstrip(";").replace("error_logs.", "") == policy
    assert (owner, options) == ("service_role", None)  # not a security_barrier view: the search's ILIKE plans in


# ---- the claim functions may run in parallel workers ---------------------------------------------------------

CLAIM_FUNCTIONS = ("auth.uid()", "auth.jwt()", "public.studio_is_admin()", "public.studio_sees_all_conversations()")


def _parallel(conn: Connection) -> dict[str, str]:
    return {name: conn.execute(text(f"select proparallel from pg_proc where oid = '{name}'::regprocedure")
                               ).scalar_one() for name in CLAIM_FUNCTIONS}


def test_the_claim_functions_the_app_created_are_parallel_safe(world):
    """Where the migration made auth.uid() and auth.jwt() itself, they and the studio functions are PARALLEL SAFE."""
    with world.engine.connect() as conn:
        assert _parallel(conn) == dict.fromkeys(CLAIM_FUNCTIONS, "s")


def test_claims_reach_a_parallel_plan_as_they_reach_a_single_process_one(world):
    """With parallel plans made free, a person's count through the search view is the one a plan without workers gives."""
    counts = []
    for workers in (0, 2):
        with as_(world, world.b) as conn:
            for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
                conn.execute(text(f"set local {setting} = 0"))
            conn.execute(text(f"set local max_parallel_workers_per_gather = {workers}"))
            plan = "\n".join(conn.execute(text(f"explain select count(*) from {SEARCH_VIEW}")).scalars())
            assert ("Gather" in plan) == bool(workers)
            counts.append(_count(conn, SEARCH_VIEW))
    assert counts == [2, 2]  # B's row and the system's


def test_supabases_own_claim_functions_are_left_parallel_unsafe(tmp_path):
    """auth.uid() and auth.jwt() that were there before the migration, with their own body and owner, stay as they were."""
    login = f"studio_app_supa_{_TAG}"
    with login_role(login) as (admin, url), _isolated(tmp_path):
        with create_engine(url.replace(f"//{login}@", "//postgres@"), isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("create schema auth"))  # as Supabase has them: another role's, other text
            conn.execute(text("create function auth.uid() returns uuid language sql stable as "
                              "$$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$"))
            conn.execute(text("create function auth.jwt() returns jsonb language sql stable as "
                              "$$ select nullif(current_setting('request.jwt.claims', true), '')::jsonb $$"))
            conn.execute(text(f'grant usage on schema auth to "{login}" with grant option'))
            conn.execute(text(f'grant execute on function auth.uid(), auth.jwt() to "{login}" with grant option'))
            conn.execute(text(f'GRANT authenticated, service_role TO "{login}"'))
        app = create_store_engine(url)
        migrate(app, force=True)
        app.dispose()
        plain = create_engine(url)
        with plain.connect() as conn:
            assert _parallel(conn) == {"auth.uid()": "u", "auth.jwt()": "u", "public.studio_is_admin()": "s",
                                       "public.studio_sees_all_conversations()": "s"}
        plain.dispose()
