"""Message Batches mode and prompt caching: a batch's mode and budget, cache usage, remote submissions.

batch_jobs gains its mode (online | message_batches; every existing batch is online), an
optional budget in dollars, and its cache read / write token totals; conversations record the
mode they were generated in and their cache usage; batch_items point at the submission they
are in flight in. `message_batch_submissions` holds one row per remote batch, written in the
transaction that marks its items submitted and before the remote call, so a worker that dies
after the call finds the remote batch by its items' custom_ids and submits nothing twice.

Postgres: Row Level Security enabled and forced on message_batch_submissions in the form of
0011's batch_items (read with the batch, written by whoever may act on the batch; the worker
runs as service_role).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from core.store.alter import add_missing, drop_added
from core.store.rls import Policy, apply_policies, drop_policies
from core.store.schema import metadata

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UID = "(select auth.uid())::text"
ADMIN = "(select public.studio_is_admin())"
OWN_BATCH = ("exists (select 1 from public.batch_jobs b where b.id = message_batch_submissions.batch_id "
             f"and (b.owner_id = {UID} or {ADMIN}))")
VISIBLE_BATCH = "exists (select 1 from public.batch_jobs b where b.id = message_batch_submissions.batch_id)"

POLICIES: dict[str, list[Policy]] = {
    "message_batch_submissions": [
        ("submissions_select", "SELECT", VISIBLE_BATCH, None),
        ("submissions_write", "ALL", OWN_BATCH, OWN_BATCH),
    ],
}

COLUMNS: dict[str, list[sa.Column]] = {
    "batch_jobs": [
        sa.Column("mode", sa.String(20), nullable=False, server_default="online"),
        sa.Column("budget_usd", sa.Float()),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_creation_tokens", sa.BigInteger(), nullable=False, server_default="0"),
    ],
    "batch_items": [sa.Column("submission_id", sa.String(36))],
    "conversations": [
        sa.Column("mode", sa.String(20), nullable=False, server_default="online"),
        sa.Column("cache_read_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cache_creation_tokens", sa.Integer(), nullable=False, server_default="0"),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    add_missing(op, COLUMNS, {})
    if "message_batch_submissions" not in sa.inspect(bind).get_table_names():
        metadata.create_all(bind, tables=[metadata.tables["message_batch_submissions"]])
    if bind.dialect.name != "postgresql":
        return
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.message_batch_submissions TO authenticated, service_role")
    apply_policies(op.execute, POLICIES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_policies(op.execute, POLICIES)
    op.drop_table("message_batch_submissions")
    drop_added(op, COLUMNS, {})
