"""error_logs (error_code, created_at) replaces (error_code): a code in a time range is counted from the index.

A search word that names a code ("timeout" finds request_timeout and timeout) adds
`error_code IN (...)` to the text match, and the page's time range applies to those rows too.
With the code alone in the index, SQLite fetched each of the code's rows of every time to
read its created_at: counting a week's "timeout" at 1M rows took ~260 ms, the stats over the
same rows ~350 ms. With created_at in the index the count reads only the index range
(~5 ms) and the stats read only the rows in range. Every lookup by code alone still seeks
on the prefix. 0001 builds error_logs from the live schema, so a fresh database already has
the new index; every step checks first.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NEW = {"ix_error_logs_code_created": ["error_code", "created_at"]}
OLD = {"ix_error_logs_code": ["error_code"]}


def _existing() -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("error_logs")}


def _swap(add: dict[str, list[str]], drop: dict[str, list[str]]) -> None:
    existing = _existing()
    for name, columns in add.items():
        if name not in existing:
            op.create_index(name, "error_logs", columns)
    for name in drop:
        if name in existing:
            op.drop_index(name, table_name="error_logs")


def upgrade() -> None:
    _swap(NEW, OLD)


def downgrade() -> None:
    _swap(OLD, NEW)
