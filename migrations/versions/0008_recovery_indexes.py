"""Recovery's checks read indexes, not every conversation: batch_items (status, conversation_id),
conversations (draft_id, id) and conversation_drafts (status, updated_at).

The Recovery page looked for conversations out of step with their batch item by joining every
batch conversation to its item (0.4-0.6 s at 100,000 conversations, growing with the table).
It now starts from the items that can be out of step (not done, or done without a
conversation id), found by the first index, and from conversations linked to a draft, found
by the second (with the id, so the index alone answers). Drafts left open by any user were
read through the per-user index's whole length; the third finds them directly. 0001 builds
tables from the live schema, so a fresh database already has all three; every step checks first.

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

INDEXES = (("ix_batch_items_status_conversation", "batch_items", ["status", "conversation_id"]),
           ("ix_conversations_draft", "conversations", ["draft_id", "id"]),
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
