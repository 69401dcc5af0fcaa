"""Postgres RLS, corrected: no error rows for the signed-out, the rollup kept by the system, one policy per command.

Faults of 0011, found by tests/integration/test_rls_postgres.py:

- error_logs let a transaction without a person (a signed-out visitor: `authenticated`, no
  `sub`) read, write and resolve every row that has no user. Its policies now require a person
  first; the rows of no user stay visible to every signed-in analyst.
- The rollup triggers (0003) ran as the person whose statement fired them, so under RLS an
  analyst's resolve failed ("new row violates row-level security policy for table
  error_log_rollup": an upsert must see the row it updates, and only admins may read counts),
  and a decrement that could not see its row would have been skipped silently. The trigger
  function now runs as service_role (the function's own `SET role`, as the worker's writes do);
  people keep only what they need: admins read it, and delete the zero rows retention leaves
  (cleanup is an admin's).
- A policy FOR ALL applies to SELECT too, so the items and resumes of a batch were read through
  two subqueries on batch_jobs each (the SELECT policy's and the write policy's), and users and
  settings through two conditions: the write policies are now one per command.
- `GRANT ... ON ALL TABLES` in 0011 gave `authenticated` and `service_role` write access to
  alembic_version; revoked (reading the revision stays allowed).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UID = "(select auth.uid())::text"
SIGNED_IN = "(select auth.uid()) is not null"
ADMIN = "(select public.studio_is_admin())"
VIEWS_ALL = "(select public.studio_sees_all_conversations())"
ERROR_ROWS = f"{SIGNED_IN} and (user_id is null or user_id = {UID} or {ADMIN})"
# a batch this person may change (their own, or any for an admin); RLS on batch_jobs applies inside
OWN_BATCH = ("exists (select 1 from public.batch_jobs b where b.id = {col} "
             f"and (b.owner_id = {UID} or {ADMIN}))")
# a batch this person may see: a reviewer or an admin every one, without looking it up
VISIBLE_BATCH = VIEWS_ALL + " or exists (select 1 from public.batch_jobs b where b.id = {col})"


def _batch_part(table: str) -> list[tuple[str, str, str | None, str | None]]:
    """The policies of a table whose rows belong to a batch (its items, its resumes)."""
    col = f"{table}.batch_id"
    own = OWN_BATCH.format(col=col)
    return [(f"{table}_select", "SELECT", VISIBLE_BATCH.format(col=col), None),
            (f"{table}_insert", "INSERT", None, own),
            (f"{table}_update", "UPDATE", own, own),
            (f"{table}_delete", "DELETE", own, None)]


def _admin_writes(table: str) -> list[tuple[str, str, str | None, str | None]]:
    return [(f"{table}_insert", "INSERT", None, ADMIN), (f"{table}_update", "UPDATE", ADMIN, ADMIN),
            (f"{table}_delete", "DELETE", ADMIN, None)]


# table -> [(policy, command, using, with check)], for `authenticated`
POLICIES: dict[str, list[tuple[str, str, str | None, str | None]]] = {
    "error_logs": [
        ("error_logs_select", "SELECT", ERROR_ROWS, None),
        ("error_logs_insert", "INSERT", None, ERROR_ROWS),
        ("error_logs_update", "UPDATE", ERROR_ROWS, ERROR_ROWS),
        ("error_logs_delete", "DELETE", ADMIN, None),
    ],
    "error_log_rollup": [
        ("rollup_select", "SELECT", ADMIN, None),
        ("rollup_delete", "DELETE", ADMIN, None),
    ],
    "batch_items": _batch_part("batch_items"),
    "batch_resumes": _batch_part("batch_resumes"),
    "app_users": _admin_writes("app_users"),
    "app_settings": _admin_writes("app_settings"),
}
# 0011's policies these replace
_DROPPED = {"error_log_rollup": ("rollup_insert", "rollup_update"), "batch_items": ("batch_items_write",),
            "batch_resumes": ("batch_resumes_write",), "app_users": ("app_users_write",),
            "app_settings": ("app_settings_write",)}

# the triggers' function runs as service_role (a function's own SET, undone when it returns): the
# login role running every transaction is a member of it already
_ROLLUP_AS_SYSTEM = """
ALTER FUNCTION public.error_log_rollup_apply() SET role = 'service_role';
REVOKE INSERT, UPDATE, TRUNCATE ON public.error_log_rollup FROM authenticated;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.alembic_version FROM authenticated, service_role;
"""

_ROLLUP_AS_INVOKER = """
ALTER FUNCTION public.error_log_rollup_apply() RESET role;
GRANT INSERT, UPDATE ON public.error_log_rollup TO authenticated;
GRANT INSERT, UPDATE, DELETE ON public.alembic_version TO authenticated, service_role;
"""


def _create(table: str, name: str, command: str, using: str | None, check: str | None) -> None:
    op.execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
    sql = f"CREATE POLICY {name} ON public.{table} FOR {command} TO authenticated"
    if using:
        sql += f" USING ({using})"
    if check:
        sql += f" WITH CHECK ({check})"
    op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, policies in POLICIES.items():
        for name in _DROPPED.get(table, ()):
            op.execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
        for policy in policies:
            _create(table, *policy)
    op.execute(_ROLLUP_AS_SYSTEM)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_ROLLUP_AS_INVOKER)
    shared = f"user_id is null or user_id = {UID} or {ADMIN}"
    for policy in (("error_logs_select", "SELECT", shared, None), ("error_logs_insert", "INSERT", None, shared),
                   ("error_logs_update", "UPDATE", shared, shared)):
        _create("error_logs", *policy)
    for policy in (("rollup_insert", "INSERT", None, "true"), ("rollup_update", "UPDATE", "true", "true"),
                   ("rollup_delete", "DELETE", "true", None)):
        _create("error_log_rollup", *policy)
    for table in ("batch_items", "batch_resumes"):
        for name, *_rest in _batch_part(table)[1:]:
            op.execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
        col = f"{table}.batch_id"
        _create(table, f"{table}_select", "SELECT", f"exists (select 1 from public.batch_jobs b where b.id = {col})",
                None)
        _create(table, f"{table}_write", "ALL", OWN_BATCH.format(col=col), OWN_BATCH.format(col=col))
    for table in ("app_users", "app_settings"):
        for name, *_rest in _admin_writes(table):
            op.execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
        _create(table, f"{table}_write", "ALL", ADMIN, ADMIN)
