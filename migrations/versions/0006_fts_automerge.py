"""SQLite full-text index: merge segments sixteen at a time instead of four.

FTS5 writes each statement's new index entries as a segment and, with its default
automerge of 4, merges four segments of a level as soon as they exist, a little on every
write. At a million error rows that merging was most of what the recorder's writer spent
per row. Writer into a 1M-row table, same machine, runs alternating: automerge 4
13,500-14,200 rows/s; 8: 20,400-21,600; 16: 22,500 (and 21,200 in a full bench/errorlog.py
run, which also seeded at 16,400 rows/s against 7,000-12,300 before). Searches read more
segments per level, but at 1M rows that did not show: "connection refused" (42,000 matches)
counted in 35.9 ms with the index as the seeder left it and 35.6 ms after merging it down
completely. Postgres (pg_trgm GIN) is not affected.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

AUTOMERGE = 16
FTS5_DEFAULT_AUTOMERGE = 4


def _set_automerge(value: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # stored in the index's own config table, so every connection uses it
        op.execute(f"INSERT INTO error_logs_fts(error_logs_fts, rank) VALUES ('automerge', {int(value)})")


def upgrade() -> None:
    _set_automerge(AUTOMERGE)


def downgrade() -> None:
    _set_automerge(FTS5_DEFAULT_AUTOMERGE)
