"""Postgres Row Level Security in the migrations' one form: enabled, forced, one policy per (table, command).

A policy is (name, command, using, with check), for the role `authenticated`; `service_role`
bypasses RLS. Migrations 0011 and 0013 declare their tables' policies and apply them here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["Policy", "apply_policies", "drop_policies"]

Policy = tuple[str, str, str | None, str | None]


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
