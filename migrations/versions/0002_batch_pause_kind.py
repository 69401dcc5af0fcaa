"""Batches remember who paused them, so a breaker pause resumes by itself and a user pause does not.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 builds its tables from the live schema module, so a fresh database already has the column
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("batch_jobs")}
    if "pause_kind" not in columns:
        with op.batch_alter_table("batch_jobs") as batch:
            batch.add_column(sa.Column("pause_kind", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_jobs") as batch:
        batch.drop_column("pause_kind")
