"""Worker deaths are counted apart from an item's own failures: batch_items.lost_attempts.

An item that was in flight when its worker died (kill -9, crash, a stop past the lease) used
to spend one of its settings.item_max_attempts, so a few restarts failed innocent items as
worker_lost. Deaths now count in their own column against settings.item_max_lost_attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 builds its tables from the live schema module, so a fresh database already has the column
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("batch_items")}
    if "lost_attempts" not in columns:
        with op.batch_alter_table("batch_items") as batch:
            batch.add_column(sa.Column("lost_attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batch_items") as batch:
        batch.drop_column("lost_attempts")
