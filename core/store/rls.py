"""Postgres Row Level Security in the migrations' one form: enabled, forced, one policy per (table, command).

A policy is (name, command, using, with check), for the role `authenticated`; `service_role`
bypasses RLS. Migrations 0011 and 0013 declare their tables' policies and apply them here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["AUTH_JWT_BODY", "AUTH_UID_BODY", "Policy", "apply_policies", "drop_policies", "sql_literal"]

Policy = tuple[str, str, str | None, str | None]

# the bodies 0011 gives auth.uid() and auth.jwt() where Supabase's are missing, as pg_proc.prosrc
# keeps them: 0015 knows the app's own functions by them. Changing them changes what 0011 created.
AUTH_UID_BODY = """select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
               (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid"""
AUTH_JWT_BODY = """select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
               nullif(current_setting('request.jwt.claims', true), ''))::jsonb"""


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def apply_policies(execute: Callable[[str], object], policies: Mapping[str, Sequence[Policy]]) -> None:
    """Enable and force RLS on each table and (re)create its policies."""
    for table, table_policies in policies.items():
        execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
        execute(f"ALTER TABLE public.{table} FORCE ROW LEVEL SECURITY")
        for name, command, using, check in table_policies:
            execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
            sql = f"CREATE POLICY {name} ON public.{table} FOR {command} TO authenticated"
            if using:
                sql += f" USING ({using})"
            if check:
                sql += f" WITH CHECK ({check})"
            execute(sql)


def drop_policies(execute: Callable[[str], object], policies: Mapping[str, Sequence[Policy]]) -> None:
    """Drop the policies and switch RLS off again on each table."""
    for table, table_policies in policies.items():
        for name, _command, _using, _check in table_policies:
            execute(f"DROP POLICY IF EXISTS {name} ON public.{table}")
        execute(f"ALTER TABLE public.{table} NO FORCE ROW LEVEL SECURITY")
        execute(f"ALTER TABLE public.{table} DISABLE ROW LEVEL SECURITY")
