"""batch_jobs (created_at, id): the batch list, newest first, reads its page from an index.

The list (`ORDER BY created_at DESC, id LIMIT n`) had no index to read in that order, so every
page view read and sorted every batch of every person: 1.3 ms at 1,000 batches as service_role,
2.1 ms with RLS (whose filter runs on each row read), both growing with the table. With the
index a page reads its n rows (and, under RLS, the rows it skips). 0001 builds batch_jobs from
the live schema, so a fresh database already has it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from alembic import op

from core.store.alter import add_missing, drop_added

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INDEXES = {"ix_batch_jobs_created": ("batch_jobs", ["created_at", "id"])}


def upgrade() -> None:
    add_missing(op, {}, INDEXES)


def downgrade() -> None:
    drop_added(op, {}, INDEXES)
