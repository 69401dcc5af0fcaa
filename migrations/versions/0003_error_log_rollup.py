"""Hourly error counts kept in step by triggers, so statistics over weeks stay fast at millions of rows.

error_log_rollup holds one row per (UTC hour, type, severity, code, recoverable, recovered,
resolved) with its count. Triggers on error_logs add, remove and move counts on insert,
delete and update; existing rows are counted once here. SQLite uses row triggers (one
writer at a time); Postgres statement triggers with transition tables, so a COPY or a
multi-row insert updates each rollup row once per statement, keys in a fixed order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

from core.store.schema import metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEYS = "error_type, severity, error_code, is_recoverable, recovered, resolved"
PG_BUCKET = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"
SQLITE_BUCKET = "substr(created_at, 1, 13)"  # UtcDateTime stores 'YYYY-MM-DD HH:MM:SS.ffffff'


def _sqlite_key_match(row: str) -> str:
    cols = ["error_type", "severity", "error_code", "is_recoverable", "recovered", "resolved"]
    return f"bucket = substr({row}.created_at, 1, 13) AND " + " AND ".join(f"{c} = {row}.{c}" for c in cols)


def _sqlite_add(row: str) -> str:
    values = ", ".join(f"{row}.{c}" for c in KEYS.split(", "))
    return (f"INSERT INTO error_log_rollup (bucket, {KEYS}, n) VALUES (substr({row}.created_at, 1, 13), {values}, 1) "
            f"ON CONFLICT (bucket, {KEYS}) DO UPDATE SET n = n + 1;")


def _sqlite_remove(row: str) -> str:
    return f"UPDATE error_log_rollup SET n = n - 1 WHERE {_sqlite_key_match(row)};"


PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION error_log_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE error_log_rollup AS r SET n = r.n - d.n
        FROM (SELECT {PG_BUCKET} AS bucket, {KEYS}, count(*) AS n FROM old_rows
              GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7) AS d
        WHERE r.bucket = d.bucket AND r.error_type = d.error_type AND r.severity = d.severity
          AND r.error_code = d.error_code AND r.is_recoverable = d.is_recoverable
          AND r.recovered = d.recovered AND r.resolved = d.resolved;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO error_log_rollup AS r (bucket, {KEYS}, n)
        SELECT {PG_BUCKET}, {KEYS}, count(*) FROM new_rows
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (bucket, {KEYS}) DO UPDATE SET n = r.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables["error_log_rollup"]])
    sqlite = bind.dialect.name == "sqlite"
    bucket = SQLITE_BUCKET if sqlite else PG_BUCKET
    op.execute("DELETE FROM error_log_rollup")  # re-running counts from scratch, never twice
    op.execute(f"INSERT INTO error_log_rollup (bucket, {KEYS}, n) "
               f"SELECT {bucket}, {KEYS}, count(*) FROM error_logs GROUP BY 1, 2, 3, 4, 5, 6, 7")
    if sqlite:
        op.execute(f"CREATE TRIGGER IF NOT EXISTS error_logs_rollup_ai AFTER INSERT ON error_logs BEGIN "
                   f"{_sqlite_add('new')} END")
        op.execute(f"CREATE TRIGGER IF NOT EXISTS error_logs_rollup_ad AFTER DELETE ON error_logs BEGIN "
                   f"{_sqlite_remove('old')} END")
        op.execute(f"CREATE TRIGGER IF NOT EXISTS error_logs_rollup_au AFTER UPDATE OF created_at, {KEYS} "
                   f"ON error_logs BEGIN {_sqlite_remove('old')} {_sqlite_add('new')} END")
    else:
        op.execute(PG_FUNCTION)
        for name, event, refs in (
            ("error_logs_rollup_ins", "INSERT", "NEW TABLE AS new_rows"),
            ("error_logs_rollup_del", "DELETE", "OLD TABLE AS old_rows"),
            ("error_logs_rollup_upd", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON error_logs")
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON error_logs REFERENCING {refs} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION error_log_rollup_apply()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("error_logs_rollup_ai", "error_logs_rollup_ad", "error_logs_rollup_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name in ("error_logs_rollup_ins", "error_logs_rollup_del", "error_logs_rollup_upd"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON error_logs")
        op.execute("DROP FUNCTION IF EXISTS error_log_rollup_apply()")
    op.execute("DROP TABLE IF EXISTS error_log_rollup")
