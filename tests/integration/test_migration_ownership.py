"""A database made before users (revision 0009), with rows, upgraded to head: every old row is the local user's, none lost."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, text

from core.auth.claims import AS_LOGIN_ROLE
from core.auth.users import LOCAL_ISSUER, local_actor
from core.store import create_store_engine, migrate
from core.store import schema as s

LONG_NAME = "someone-whose-name-is-longer-than-an-id-of-36-characters"
# the person columns that held a name until 0010, as they were then (String(128))
NAME_COLUMNS = (("conversation_drafts", "user_id"), ("error_logs", "user_id"), ("error_logs", "resolved_by"),
                ("batch_resumes", "resumed_by"), ("app_settings", "updated_by"))
# what 0010 added to tables that 0001 builds from today's schema
OWNER_COLUMNS = (("batch_jobs", "ix_batch_jobs_owner"), ("conversations", "ix_conversations_owner"),
                 ("recovery_checkpoints", "ix_checkpoints_owner"))


def _login(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{AS_LOGIN_ROLE: True})


def _as_at_0009(engine: Engine) -> None:
    """Take away what 0001, building from today's schema, made that 0009 did not have."""
    pg = engine.dialect.name == "postgresql"
    with _login(engine) as conn, conn.begin():
        conn.execute(text("DROP INDEX ix_error_logs_user"))
        for table, index in OWNER_COLUMNS:
            conn.execute(text(f"DROP INDEX {index}"))
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN owner_id"))
        if pg:
            for table, column in NAME_COLUMNS:
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(128)"))


def _rows_of_0009(engine: Engine) -> dict[str, int]:
    """Batches, items, resumes, conversations, drafts, checkpoints, errors and a setting, by names; their counts."""
    now = datetime.now(UTC)
    batch = str(uuid.uuid4())
    with _login(engine) as conn, conn.begin():
        def insert(table: str, **values: object) -> None:
            conn.execute(s.metadata.tables[table].insert().values(**values))

        insert("batch_jobs", id=batch, template="t", model="m", config={}, total_items=2, created_by="analyst")
        insert("batch_jobs", id=str(uuid.uuid4()), template="t", model="m", config={}, total_items=0,
               created_by=LONG_NAME)
        for i in range(2):
            insert("batch_items", batch_id=batch, item_index=i, params={})
        insert("batch_resumes", batch_id=batch, resumed_by=LONG_NAME)
        insert("conversations", id=str(uuid.uuid4()), batch_id=batch, item_index=0, template="t", model="m",
               params={}, turns=[], turn_count=0, created_by="analyst")
        insert("conversations", id=str(uuid.uuid4()), template="t", model="m", params={}, turns=[], turn_count=0)
        for name in ("analyst", LONG_NAME):
            insert("conversation_drafts", id=str(uuid.uuid4()), user_id=name, template="t", params={})
        insert("recovery_checkpoints", operation_type="batch", operation_id=batch)
        for i, (user, resolver) in enumerate((("analyst", None), (LONG_NAME, "analyst"), (None, None),
                                              (None, LONG_NAME))):
            insert("error_logs", error_id=f"e{i}", created_at=now - timedelta(hours=i), error_type="api",
                   error_code="timeout", severity="error", message="m", fingerprint="f", user_id=user,
                   resolved=resolver is not None, resolved_by=resolver)
        insert("app_settings", key="retention_days_error", value="30", updated_by=LONG_NAME)
    with _login(engine) as conn:
        return {t: conn.execute(sa.select(sa.func.count()).select_from(s.metadata.tables[t])).scalar_one()
                for t in ("batch_jobs", "batch_items", "batch_resumes", "conversations", "conversation_drafts",
                          "recovery_checkpoints", "error_logs", "app_settings")}


def _upgraded_from_0009(url: str) -> tuple[Engine, dict[str, int]]:
    """A database at 0009 with rows made by name, then upgraded to head; the counts before."""
    engine = create_store_engine(url)
    migrate(engine, force=True, revision="0009")
    _as_at_0009(engine)
    counts = _rows_of_0009(engine)
    migrate(engine, force=True)
    return engine, counts


@pytest.fixture
def upgraded(database_url) -> tuple[Engine, dict[str, int]]:
    return _upgraded_from_0009(database_url)


def test_the_old_database_lacked_owner_columns_before_the_upgrade(database_url):
    """The starting point is what 0009 had: no owner_id anywhere, no users, names in the person columns."""
    engine = create_store_engine(database_url)
    migrate(engine, force=True, revision="0009")
    _as_at_0009(engine)
    with _login(engine) as conn:
        inspector = sa.inspect(conn)
        assert not [t for t, _ in OWNER_COLUMNS if "owner_id" in {c["name"] for c in inspector.get_columns(t)}]
        assert "app_users" not in inspector.get_table_names()
    engine.dispose()


def test_every_old_row_belongs_to_the_local_admin_and_none_is_lost(upgraded):
    """After the upgrade one local admin exists; each owner and person column names them; every row is still there."""
    engine, before = upgraded
    with _login(engine) as conn:
        users = conn.execute(sa.select(s.app_users.c.id, s.app_users.c.issuer, s.app_users.c.subject,
                                       s.app_users.c.role)).all()
        assert [(u.issuer, u.subject, u.role) for u in users] == [(LOCAL_ISSUER, "analyst", "admin")]
        local = users[0].id
        owners = {t: set(conn.execute(text(f"SELECT owner_id FROM {t}")).scalars())
                  for t, _ in OWNER_COLUMNS}
        people = {(t, c): set(conn.execute(text(f"SELECT {c} FROM {t} WHERE {c} IS NOT NULL")).scalars())
                  for t, c in NAME_COLUMNS}
        after = {t: conn.execute(sa.select(sa.func.count()).select_from(s.metadata.tables[t])).scalar_one()
                 for t in before}
        system_errors = conn.execute(text("SELECT count(*) FROM error_logs WHERE user_id IS NULL")).scalar_one()
    assert owners == {t: {local} for t, _ in OWNER_COLUMNS}
    assert people == {key: {local} for key in NAME_COLUMNS}
    assert after == before
    assert system_errors == 2  # the system's rows stay nobody's
    assert local_actor(engine).user_id == local  # the app's local user is that admin
    engine.dispose()


def test_the_rollup_still_counts_every_row_after_the_upgrade(upgraded):
    """Moving names to ids rewrote error rows; the hourly rollup still equals counting them."""
    engine, _ = upgraded
    with _login(engine) as conn:
        rolled = dict(conn.execute(text("SELECT resolved, sum(n) FROM error_log_rollup GROUP BY 1")).all())
        counted = dict(conn.execute(text("SELECT resolved, count(*) FROM error_logs GROUP BY 1")).all())
    assert {bool(k): int(v) for k, v in rolled.items() if v} == {bool(k): int(v) for k, v in counted.items()}
    engine.dispose()


@pytest.mark.postgres
def test_on_postgres_the_local_admin_sees_every_old_row_through_rls(request):
    """With RLS on, the local admin's claims see every upgraded row; another signed-in analyst none of them."""
    engine, before = _upgraded_from_0009(request.getfixturevalue("pg_databases").new())
    admin = local_actor(engine)
    stranger = str(uuid.uuid4())
    seen = {}
    for who, claims in (("admin", admin.claims()),
                        ("stranger", {"sub": stranger, "role": "authenticated", "studio_role": "analyst"})):
        with _login(engine) as conn, conn.begin():
            conn.execute(text("SELECT set_config('request.jwt.claims', :c, true)"), {"c": json.dumps(claims)})
            conn.execute(text("SET LOCAL ROLE authenticated"))
            seen[who] = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in before}
    engine.dispose()
    assert seen["admin"] == before
    # the stranger sees only the system's two error rows (shared) and the settings (everyone's)
    assert seen["stranger"] == {**dict.fromkeys(before, 0), "error_logs": 2, "app_settings": 1}
