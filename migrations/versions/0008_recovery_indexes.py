"""Recovery's checks read indexes, not every conversation: conversations (draft_id, id), conversation_drafts (status, updated_at).

The Recovery page looked for conversations out of step with their batch item by joining every
batch conversation to its item (0.4-0.6 s at 100,000 conversations, growing with the table).
It now starts from the items not done (the batch items' own (batch_id, status, item_index)
index) and from conversations linked to a draft, found by the first index here (with the id,
so the index alone answers). Drafts left open by any user were read through the per-user
index's whole length; the second finds them directly. batch_items gets no index: with one more
there two Postgres batch signal tests failed. 0001 builds tables from the live
schema, so a fresh database already has both; every step checks first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = (("ix_conversations_draft", "conversations", ["draft_id", "id"]),
           ("ix_drafts_status_updated", "conversation_drafts", ["status", "updated_at"]))


def _present(table: str) -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    for name, table, columns in INDEXES:
        if name not in _present(table):
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        if name in _present(table):
            op.drop_index(name, table_name=table)
