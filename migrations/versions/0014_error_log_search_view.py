"""Postgres: the error log's text search reads a view that carries the rows' policy, so the trigram index serves it.

Under RLS Postgres evaluates a policy's condition before any condition of the query that is not
LEAKPROOF, and ILIKE is not: the search could not use the pg_trgm index on error_logs.message
and walked every row of the time range (2.3-9x slower than service_role, bench/RESULTS.md). The
view `studio_private.error_log_search` is owned by service_role (BYPASSRLS), so reading it applies
no policy of error_logs; instead it carries the SELECT policy's own condition (0012's
error_logs_select: a signed-in person, and the rows of no user, their own, or any for an admin),
evaluated for whoever reads it (`auth.uid()` and the role claim are the reader's). It is not a
`security_barrier` view, so the query's conditions (the ILIKE) may be planned into it, with the
index. That gives up the ordering guarantee: a reader able to run their own SQL could evaluate a
function on rows before the view's condition drops them. People reach the database through the
app only; the schema is not one Supabase's API exposes (public, graphql_public), and `anon` and
PUBLIC get nothing here. `authenticated` may only SELECT (the view would otherwise be
auto-updatable, with the owner's rights). The app still puts its own permission condition in
the query's WHERE (core.auth.permissions), as on every read. `SELECT *` is fixed when the view is
created: a migration that adds a column to error_logs recreates the view. SQLite has no RLS: nothing here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = "studio_private"
VIEW = f"{SCHEMA}.error_log_search"
UID = "(select auth.uid())::text"
SIGNED_IN = "(select auth.uid()) is not null"
ADMIN = "(select public.studio_is_admin())"
# 0012's error_logs_select, word for word: keep the two in step
ERROR_ROWS = f"{SIGNED_IN} and (user_id is null or user_id = {UID} or {ADMIN})"

_UPGRADE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SCHEMA} TO authenticated, service_role;
CREATE VIEW {VIEW} AS SELECT * FROM public.error_logs WHERE {ERROR_ROWS};
-- a new owner must be able to create in the schema; it keeps the view without that right
GRANT CREATE ON SCHEMA {SCHEMA} TO service_role;
ALTER VIEW {VIEW} OWNER TO service_role;
REVOKE CREATE ON SCHEMA {SCHEMA} FROM service_role;
REVOKE ALL ON {VIEW} FROM PUBLIC, anon, authenticated;
GRANT SELECT ON {VIEW} TO authenticated;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_UPGRADE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP VIEW IF EXISTS {VIEW}")
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
