"""Postgres: the claim functions the policies call are PARALLEL SAFE, so a person's reads may run in parallel.

A function is PARALLEL UNSAFE unless declared otherwise, and one such function anywhere in a
query rules out a parallel plan for all of it. Every policy and the search view (0014) call
`auth.uid()` and `public.studio_is_admin()`: a person's common-needle search walked the 7 days'
rows in one process where service_role's used workers (1.5-1.8x slower, bench/RESULTS.md). They
only read settings (`current_setting`, itself parallel safe) and the claims in them, the same in
every worker (a parallel worker takes the leader's settings, the role and the claims included).
`public.studio_*` are always this app's (0011 creates or replaces them). `auth.uid()` and
`auth.jwt()` are marked only where they are the ones 0011 created, known by their body as
pg_proc keeps it (core.store.rls), and owned by a role the login role acts for: on Supabase they
are Supabase's, left as they are. SQLite has no RLS: nothing here.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from alembic import op

from core.store.rls import AUTH_JWT_BODY, AUTH_UID_BODY, sql_literal

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

STUDIO_FUNCTIONS = ("public.studio_is_admin()", "public.studio_sees_all_conversations()")
AUTH_FUNCTIONS = (("auth.uid()", AUTH_UID_BODY), ("auth.jwt()", AUTH_JWT_BODY))


def _mark(parallel: str) -> str:
    """The statements that set `parallel` (SAFE or UNSAFE) on this app's claim functions."""
    auth = "\n".join(
        f"""  IF EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('{name}')
             AND prosrc = {sql_literal(body)} AND pg_has_role(current_user, proowner, 'USAGE')) THEN
    ALTER FUNCTION {name} PARALLEL {parallel};
  END IF;"""
        for name, body in AUTH_FUNCTIONS)
    studio = "\n".join(f"ALTER FUNCTION {name} PARALLEL {parallel};" for name in STUDIO_FUNCTIONS)
    return f"{studio}\nDO $$\nBEGIN\n{auth}\nEND $$;"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_mark("SAFE"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_mark("UNSAFE"))
