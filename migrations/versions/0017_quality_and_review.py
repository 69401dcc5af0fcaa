"""Quality gate and review: each conversation's checks, score, duplicate flags, judge and review state.

conversations gains the review state (`review_status`: accepted | needs_review | rejected |
regenerate; rows made before this migration are `needs_review`, unchecked: `quality_score` NULL),
the named checks and the score's parts, the hash and MinHash signature duplicates are found by,
what a flagged conversation duplicates and the passage they share, the optional judge's answer
and cost, the turns as generated once a reviewer edits one, and who reviewed it when, with a
note. batch_items counts the times routing sent an item back to be generated again; batch_jobs
keeps the judge's cost apart from generation. `review_decisions` is the history of decisions,
one row each; (operation_id, conversation_id) is unique, so a bulk decision resumed after a
crash applies at most once per conversation.

Postgres: Row Level Security enabled and forced on review_decisions in the form of 0011 (a
person reads the decisions on the conversations they may see, and writes them as themselves
only where they may review: a reviewer or an admin); the other tables keep their policies.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from core.store.alter import add_missing, drop_added
from core.store.rls import Policy, apply_policies, drop_policies
from core.store.schema import metadata

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UID = "(select auth.uid())::text"
REVIEWS = "(select public.studio_sees_all_conversations())"
VISIBLE_CONVERSATION = ("exists (select 1 from public.conversations c "
                        "where c.id = review_decisions.conversation_id)")

POLICIES: dict[str, list[Policy]] = {
    "review_decisions": [
        ("review_decisions_select", "SELECT", VISIBLE_CONVERSATION, None),
        ("review_decisions_insert", "INSERT", None, f"reviewer_id = {UID} and {REVIEWS}"),
    ],
}

COLUMNS: dict[str, list[sa.Column]] = {
    "conversations": [
        sa.Column("review_status", sa.String(16), nullable=False, server_default="needs_review"),
        sa.Column("quality_score", sa.Integer()),
        sa.Column("checks", sa.JSON()),
        sa.Column("score_parts", sa.JSON()),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("minhash", sa.LargeBinary()),
        sa.Column("duplicate_of", sa.String(36)),
        sa.Column("duplicate_kind", sa.String(8)),
        sa.Column("duplicate_similarity", sa.Float()),
        sa.Column("duplicate_passage", sa.Text()),
        sa.Column("judge", sa.JSON()),
        sa.Column("judge_status", sa.String(16)),
        sa.Column("judge_cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("original_turns", sa.JSON()),
        sa.Column("reviewed_by", sa.String(36)),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("review_note", sa.Text()),
    ],
    "batch_items": [sa.Column("regenerations", sa.Integer(), nullable=False, server_default="0")],
    "batch_jobs": [sa.Column("judge_cost_usd", sa.Float(), nullable=False, server_default="0")],
}
INDEXES = {"ix_conversations_review": ("conversations", ["review_status", "created_at"]),
           "ix_conversations_hash": ("conversations", ["content_hash"])}


def upgrade() -> None:
    bind = op.get_bind()
    add_missing(op, COLUMNS, INDEXES)
    if "review_decisions" not in sa.inspect(bind).get_table_names():
        metadata.create_all(bind, tables=[metadata.tables["review_decisions"]])
    if bind.dialect.name != "postgresql":
        return
    op.execute("GRANT SELECT, INSERT ON public.review_decisions TO authenticated")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.review_decisions TO service_role")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON public.review_decisions FROM authenticated")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO authenticated, service_role")
    apply_policies(op.execute, POLICIES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_policies(op.execute, POLICIES)
    op.drop_table("review_decisions")
    drop_added(op, COLUMNS, INDEXES)
