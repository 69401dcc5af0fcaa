"""Batch item claims stay fast in big batches: index (batch_id, status, item_index).

A claim asks for the first pending items by index. With (batch_id, status) alone the
database walked past every done item first, so claims slowed down as a batch progressed.
The new index replaces the old one (its prefix). 0001 builds tables from the live schema,
so a fresh database already has the new index; every step checks first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NEW = ("ix_batch_items_status_index", ["batch_id", "status", "item_index"])
OLD = ("ix_batch_items_status", ["batch_id", "status"])


def _indexes() -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("batch_items")}


def upgrade() -> None:
    present = _indexes()
    if NEW[0] not in present:
        op.create_index(NEW[0], "batch_items", NEW[1])
    if OLD[0] in present:
        op.drop_index(OLD[0], table_name="batch_items")


def downgrade() -> None:
    present = _indexes()
    if OLD[0] not in present:
        op.create_index(OLD[0], "batch_items", OLD[1])
    if NEW[0] in present:
        op.drop_index(NEW[0], table_name="batch_items")
