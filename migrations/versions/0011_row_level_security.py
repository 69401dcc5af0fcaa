"""Postgres: Row Level Security in Supabase's form, enabled and forced on every owned table.

Each transaction made for a person begins with `set_config('request.jwt.claims', ...)` and the role
`authenticated` (core.auth.claims); the worker and system jobs run as `service_role`, which
bypasses RLS. Policies compare the owner column with `(select auth.uid())` — in a sub-select, so
it is evaluated once per statement, not per row — and read the person's role from the
`studio_role` claim. On Supabase `auth.uid()`, `auth.jwt()` and the roles anon, authenticated
and service_role exist already and are left alone; on any other Postgres this creates the
`auth` schema, those two functions and the three roles when they are missing, and grants the
two roles the app switches to to the login role running the migration. Where the login role may
not (creating a BYPASSRLS role takes a superuser; granting a role, CREATEROLE or its admin
option), the migration stops, rolled back, with the statements to run by hand (README: "Postgres
roles and Row Level Security"). RLS is forced, so the login role, which owns the tables, sees
no row either unless it switches role: a later migration that changes rows must switch to
service_role for it. SQLite has no RLS: the permissions module applies the same rules in every
query there (core.auth.permissions). Corrected by 0012.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

from core.store.rls import AUTH_JWT_BODY, AUTH_UID_BODY, Policy, apply_policies, drop_policies, sql_literal

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UID = "(select auth.uid())::text"
ADMIN = "(select public.studio_is_admin())"
VIEWS_ALL = "(select public.studio_sees_all_conversations())"
# a batch this person may change (their own, or any for an admin); RLS on batch_jobs applies inside
OWN_BATCH = ("exists (select 1 from public.batch_jobs b where b.id = {col} "
             f"and (b.owner_id = {UID} or {ADMIN}))")
VISIBLE_BATCH = "exists (select 1 from public.batch_jobs b where b.id = {col})"

# table -> [(policy, command, using, with check)]
POLICIES: dict[str, list[Policy]] = {
    "batch_jobs": [
        ("batch_jobs_select", "SELECT", f"owner_id = {UID} or {VIEWS_ALL}", None),
        ("batch_jobs_insert", "INSERT", None, f"owner_id = {UID} or {ADMIN}"),
        ("batch_jobs_update", "UPDATE", f"owner_id = {UID} or {ADMIN}", f"owner_id = {UID} or {ADMIN}"),
        ("batch_jobs_delete", "DELETE", f"owner_id = {UID} or {ADMIN}", None),
    ],
    "batch_items": [
        ("batch_items_select", "SELECT", VISIBLE_BATCH.format(col="batch_items.batch_id"), None),
        ("batch_items_write", "ALL", OWN_BATCH.format(col="batch_items.batch_id"),
         OWN_BATCH.format(col="batch_items.batch_id")),
    ],
    "batch_resumes": [
        ("batch_resumes_select", "SELECT", VISIBLE_BATCH.format(col="batch_resumes.batch_id"), None),
        ("batch_resumes_write", "ALL", OWN_BATCH.format(col="batch_resumes.batch_id"),
         OWN_BATCH.format(col="batch_resumes.batch_id")),
    ],
    "conversations": [
        ("conversations_select", "SELECT", f"owner_id = {UID} or {VIEWS_ALL}", None),
        ("conversations_insert", "INSERT", None, f"owner_id = {UID} or {ADMIN}"),
        ("conversations_update", "UPDATE", f"owner_id = {UID} or {VIEWS_ALL}", f"owner_id = {UID} or {VIEWS_ALL}"),
        ("conversations_delete", "DELETE", f"owner_id = {UID} or {ADMIN}", None),
    ],
    "conversation_drafts": [
        ("drafts_all", "ALL", f"user_id = {UID} or {ADMIN}", f"user_id = {UID} or {ADMIN}"),
    ],
    "recovery_checkpoints": [
        ("checkpoints_all", "ALL", f"owner_id = {UID} or {ADMIN}", f"owner_id = {UID} or {ADMIN}"),
    ],
    "error_logs": [
        ("error_logs_select", "SELECT", f"user_id is null or user_id = {UID} or {ADMIN}", None),
        ("error_logs_insert", "INSERT", None, f"user_id is null or user_id = {UID} or {ADMIN}"),
        ("error_logs_update", "UPDATE", f"user_id is null or user_id = {UID} or {ADMIN}",
         f"user_id is null or user_id = {UID} or {ADMIN}"),
        ("error_logs_delete", "DELETE", ADMIN, None),
    ],
    # counts of every person's errors: an admin reads them; anyone's change to error_logs keeps them
    # in step (through the triggers of 0003), so writes are open and reads are not
    "error_log_rollup": [
        ("rollup_select", "SELECT", ADMIN, None),
        ("rollup_insert", "INSERT", None, "true"),
        ("rollup_update", "UPDATE", "true", "true"),
        ("rollup_delete", "DELETE", "true", None),
    ],
    "audit_events": [
        ("audit_select", "SELECT", f"actor_id = {UID} or {ADMIN} or (target_kind = 'batch' and "
                                   f"{VISIBLE_BATCH.format(col='audit_events.target_id')})", None),
        ("audit_insert", "INSERT", None, f"actor_id = {UID}"),
    ],
    "app_users": [
        ("app_users_select", "SELECT", f"id = {UID} or {ADMIN}", None),
        ("app_users_write", "ALL", ADMIN, ADMIN),
    ],
    "app_settings": [
        ("app_settings_select", "SELECT", "(select auth.uid()) is not null", None),
        ("app_settings_write", "ALL", ADMIN, ADMIN),
    ],
}

# A login role that may not create them (BYPASSRLS takes a superuser) stops the migration with
# what to run by hand, as does a service_role that would not bypass RLS (the system would see nothing).
_ROLES = """
DO $$
DECLARE
  wanted text[][] := ARRAY[['anon', 'NOLOGIN NOINHERIT'], ['authenticated', 'NOLOGIN NOINHERIT'],
                           ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS']];
  i int;
BEGIN
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', wanted[i][1], wanted[i][2]);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration made it
        WHEN insufficient_privilege THEN
          -- one line: the CLI shows an error's first line, not its hint
          RAISE EXCEPTION 'the login role % may not create the role %. As a superuser run: CREATE ROLE anon '
            'NOLOGIN NOINHERIT; CREATE ROLE authenticated NOLOGIN NOINHERIT; CREATE ROLE service_role NOLOGIN '
            'NOINHERIT BYPASSRLS; GRANT authenticated, service_role TO %; then migrate again (README: Postgres '
            'roles and Row Level Security)', session_user, wanted[i][1], quote_ident(session_user);
      END;
    END IF;
  END LOOP;
  IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role') THEN
    RAISE EXCEPTION 'the role service_role does not bypass Row Level Security. As a superuser run: '
      'ALTER ROLE service_role BYPASSRLS; then migrate again';
  END IF;
END $$;
"""

# Supabase's own definitions are kept where they exist; these match what they return
_AUTH = f"""
CREATE SCHEMA IF NOT EXISTS auth;
DO $$
BEGIN
  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
      {sql_literal(AUTH_UID_BODY)};
  END IF;
  IF to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS
      {sql_literal(AUTH_JWT_BODY)};
  END IF;
END $$;
CREATE OR REPLACE FUNCTION public.studio_is_admin() RETURNS boolean LANGUAGE sql STABLE AS
  $$ select coalesce(auth.jwt() ->> 'studio_role', '') = 'admin' $$;
CREATE OR REPLACE FUNCTION public.studio_sees_all_conversations() RETURNS boolean LANGUAGE sql STABLE AS
  $$ select coalesce(auth.jwt() ->> 'studio_role', '') in ('admin', 'reviewer') $$;
"""

_GRANTS = """
GRANT USAGE ON SCHEMA auth TO authenticated, service_role, anon;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.jwt() TO authenticated, service_role, anon;
GRANT EXECUTE ON FUNCTION public.studio_is_admin(), public.studio_sees_all_conversations()
  TO authenticated, service_role, anon;
GRANT USAGE ON SCHEMA public TO authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO authenticated, service_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO authenticated, service_role;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM authenticated;
"""

# the login role switches to these two for each transaction (SET ROLE asks the session's login
# role for the membership); one that may not grant them to itself stops the migration with the
# GRANT to run by hand
_MEMBERSHIP = """
DO $$
DECLARE
  missing text := (SELECT string_agg(r, ', ') FROM unnest(ARRAY['authenticated', 'service_role']) AS r
                   WHERE NOT pg_has_role(session_user, r, 'MEMBER'));
BEGIN
  IF missing IS NOT NULL THEN
    EXECUTE format('GRANT %s TO %I', missing, session_user);
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE EXCEPTION 'the login role % may not switch to % (not a member, and may not grant itself). As a superuser '
    '(on Supabase: in the SQL editor) run: GRANT % TO %; then migrate again (README: Postgres roles and Row Level '
    'Security)', session_user, missing, missing, quote_ident(session_user);
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_ROLES)
    op.execute(_AUTH)
    op.execute(_GRANTS)
    op.execute(_MEMBERSHIP)
    apply_policies(op.execute, POLICIES)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    drop_policies(op.execute, POLICIES)
