"""Users and ownership: app_users, audit_events, and the owner's id on every row a person makes.

batch_jobs, conversations and recovery_checkpoints get `owner_id`; conversation_drafts.user_id,
error_logs.user_id / resolved_by, batch_resumes.resumed_by and app_settings.updated_by now hold
a user's id (app_users.id) instead of a name. The local user (issuer "local", subject the
STUDIO_USER name at the time of this migration) is created as an admin, since until now it was
the only person and made everything, and every existing row is assigned to it. 0001 builds
tables from the live schema, so a fresh database already has the tables and columns; every step
checks first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import uuid

import sqlalchemy as sa
from alembic import op

from core.store.schema import metadata

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OWNER_COLUMNS = (("batch_jobs", "ix_batch_jobs_owner", ["owner_id", "created_at"]),
                 ("conversations", "ix_conversations_owner", ["owner_id", "created_at"]),
                 ("recovery_checkpoints", "ix_checkpoints_owner", ["owner_id"]))
# columns that held a person's name and now hold their id: every value becomes the local user's
NAME_TO_ID = (("conversation_drafts", "user_id"), ("error_logs", "user_id"), ("error_logs", "resolved_by"),
              ("batch_resumes", "resumed_by"), ("app_settings", "updated_by"))
EXTRA_INDEXES = (("ix_error_logs_user", "error_logs", ["user_id", "created_at"]),)


def _local_name() -> str:
    from core.config import get_settings

    return get_settings().user_name


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    metadata.create_all(bind, tables=[metadata.tables[n] for n in ("app_users", "audit_events") if n not in tables])
    for table, index, columns in OWNER_COLUMNS:
        if "owner_id" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("owner_id", sa.String(36)))
        if index not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(index, table, columns)
    for index, table, columns in EXTRA_INDEXES:
        if index not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(index, table, columns)

    users = metadata.tables["app_users"]
    name = _local_name()
    local_id = bind.execute(sa.select(users.c.id).where(users.c.issuer == "local", users.c.subject == name)).scalar()
    if local_id is None:
        local_id = str(uuid.uuid4())
        bind.execute(users.insert().values(id=local_id, issuer="local", subject=name, display_name=name,
                                           role="admin", created_at=sa.func.current_timestamp()))
    for table, _index, _columns in OWNER_COLUMNS:
        op.execute(sa.text(f"UPDATE {table} SET owner_id = :id WHERE owner_id IS NULL").bindparams(id=local_id))
    if bind.dialect.name == "postgresql":
        for table, column in NAME_TO_ID:
            # widened names become ids; a name longer than an id would not fit a uuid-sized column
            op.execute(sa.text(f"UPDATE {table} SET {column} = :id WHERE {column} IS NOT NULL "
                               f"AND {column} <> :id").bindparams(id=local_id))
            op.alter_column(table, column, type_=sa.String(36), existing_type=sa.String(128))
    else:
        for table, column in NAME_TO_ID:
            op.execute(sa.text(f"UPDATE {table} SET {column} = :id WHERE {column} IS NOT NULL "
                               f"AND {column} <> :id").bindparams(id=local_id))


def downgrade() -> None:
    for table, index, _columns in OWNER_COLUMNS:
        op.drop_index(index, table_name=table)
        op.drop_column(table, "owner_id")
    op.drop_table("audit_events")
    op.drop_table("app_users")
