"""Initial schema: error log, checkpoints, drafts, batches, conversations, settings.

Tables come from the one schema in core.store.schema (as it stood at this revision);
later revisions alter them explicitly. Search indexes are dialect-specific:
SQLite gets an FTS5 trigram index kept in step by triggers, Postgres a pg_trgm GIN index.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from alembic import op

from core.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = [
    "error_logs",
    "recovery_checkpoints",
    "conversation_drafts",
    "batch_jobs",
    "batch_items",
    "batch_resumes",
    "conversations",
    "app_settings",
]


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in TABLES])
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE error_logs_fts USING fts5("
            "message, content='error_logs', content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER error_logs_fts_ai AFTER INSERT ON error_logs BEGIN "
            "INSERT INTO error_logs_fts(rowid, message) VALUES (new.id, new.message); END"
        )
        op.execute(
            "CREATE TRIGGER error_logs_fts_ad AFTER DELETE ON error_logs BEGIN "
            "INSERT INTO error_logs_fts(error_logs_fts, rowid, message) VALUES ('delete', old.id, old.message); END"
        )
        op.execute(
            "CREATE TRIGGER error_logs_fts_au AFTER UPDATE OF message ON error_logs BEGIN "
            "INSERT INTO error_logs_fts(error_logs_fts, rowid, message) VALUES ('delete', old.id, old.message); "
            "INSERT INTO error_logs_fts(rowid, message) VALUES (new.id, new.message); END"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_error_logs_message_trgm ON error_logs USING gin (message gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS error_logs_fts")
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(TABLES)])
