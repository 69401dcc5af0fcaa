"""Postgres: the policies of a batch's parts stop reading every batch of every person per statement.

0012's policies asked, for the rows of batch_items and batch_resumes (and 0018's
message_batch_submissions), whether their batch is visible with `exists (select 1 from batch_jobs
b where b.id = batch_id ...)` under an OR. Postgres runs that as a hashed sub-plan over batch_jobs,
whose own policy holds an OR too, so each statement read every batch of every person: 2 ms at
1,000 batches and growing with every batch anyone makes; the batch list as an analyst ran 1.28×
slower than as service_role (bench/rls.py).

batch_items, read by every batch view, now carries its batch's owner (copied at insert by
core.batches.service; filled here for the rows there are), and its policies compare that column
on the row: no look-up at all. An insert or an update must keep it equal to its batch's owner
(checked per written row, by the batch's primary key), so nobody can file an item under
someone else's name. batch_resumes and message_batch_submissions, read a batch at a time, ask
`batch_id in (select id from batch_jobs where owner_id = uid)` after the reviewer's or admin's
flag, which the index on batch_jobs (owner_id, created_at) can answer with the person's own
batches. The rules are the same as before: read with the batch; change where you may change the
batch (your own, or any for an admin).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from core.store.alter import add_missing, drop_added
from core.store.rls import Policy, apply_policies

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UID = "(select auth.uid())::text"
ADMIN = "(select public.studio_is_admin())"
VIEWS_ALL = "(select public.studio_sees_all_conversations())"

ITEM_VISIBLE = f"owner_id = {UID} or {VIEWS_ALL}"
ITEM_CHANGEABLE = f"owner_id = {UID} or {ADMIN}"
ITEM_CONSISTENT = ("exists (select 1 from public.batch_jobs b where b.id = batch_items.batch_id "
                   "and b.owner_id is not distinct from batch_items.owner_id)")
MINE = f"{{col}} in (select b.id from public.batch_jobs b where b.owner_id = {UID})"
PART_VISIBLE = f"{VIEWS_ALL} or {MINE}"
PART_CHANGEABLE = f"{ADMIN} or {MINE}"

# what these replace (0012 for items and resumes, 0018 for submissions), put back on downgrade
OLD_OWN = ("exists (select 1 from public.batch_jobs b where b.id = {col} "
           f"and (b.owner_id = {UID} or {ADMIN}))")
OLD_VISIBLE = VIEWS_ALL + " or exists (select 1 from public.batch_jobs b where b.id = {col})"
OLD_VISIBLE_0018 = "exists (select 1 from public.batch_jobs b where b.id = {col})"

COLUMNS = {"batch_items": [sa.Column("owner_id", sa.String(36))]}


def _part(table: str, visible: str, changeable: str) -> list[Policy]:
    col = f"{table}.batch_id"
    see, change = visible.format(col=col), changeable.format(col=col)
    if table == "message_batch_submissions":  # 0018's form: one policy for every write
        return [("submissions_select", "SELECT", see, None), ("submissions_write", "ALL", change, change)]
    return [(f"{table}_select", "SELECT", see, None), (f"{table}_insert", "INSERT", None, change),
            (f"{table}_update", "UPDATE", change, change), (f"{table}_delete", "DELETE", change, None)]


def _items(visible: str, changeable: str, check: str) -> list[Policy]:
    return [("batch_items_select", "SELECT", visible, None), ("batch_items_insert", "INSERT", None, check),
            ("batch_items_update", "UPDATE", changeable, check), ("batch_items_delete", "DELETE", changeable, None)]


def upgrade() -> None:
    add_missing(op, COLUMNS, {})
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # RLS is forced: the login role sees no row unless it switches (see 0011)
        op.execute("SET LOCAL role service_role")
    op.execute("UPDATE batch_items SET owner_id = (SELECT b.owner_id FROM batch_jobs b "
               "WHERE b.id = batch_items.batch_id) WHERE owner_id IS NULL")
    if not postgres:
        return
    op.execute("RESET role")
    apply_policies(op.execute, {
        "batch_items": _items(ITEM_VISIBLE, ITEM_CHANGEABLE, f"({ITEM_CHANGEABLE}) and {ITEM_CONSISTENT}"),
        "batch_resumes": _part("batch_resumes", PART_VISIBLE, PART_CHANGEABLE),
        "message_batch_submissions": _part("message_batch_submissions", PART_VISIBLE, PART_CHANGEABLE),
    })


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        apply_policies(op.execute, {
            "batch_items": _part("batch_items", OLD_VISIBLE, OLD_OWN),
            "batch_resumes": _part("batch_resumes", OLD_VISIBLE, OLD_OWN),
            "message_batch_submissions": _part("message_batch_submissions", OLD_VISIBLE_0018, OLD_OWN),
        })
    drop_added(op, COLUMNS, {})
