"""A breaker's opening is an event with a code of its own: circuit_opened.

Until now the state change and a call the open breaker refused both carried circuit_open, so
the error log could not count the one apart from the other. Rows the breakers wrote about
their own state (component breaker.<name>) take the new code; the hourly rollup follows
through its update triggers (migration 0003).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    op.execute(f"UPDATE error_logs SET error_code = '{new}' "
               f"WHERE error_code = '{old}' AND component LIKE 'breaker.%'")


def upgrade() -> None:
    _rename("circuit_open", "circuit_opened")


def downgrade() -> None:
    _rename("circuit_opened", "circuit_open")
