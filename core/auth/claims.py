"""Postgres: every transaction carries its actor's claims and role, so Row Level Security applies.

A transaction begins with one statement that sets `request.jwt.claims` (what `auth.uid()` and
`auth.jwt()` read) and the role (`authenticated` for a person or a signed-out visitor,
`service_role` for the system), both transaction-local (`set_config(..., true)` is `SET LOCAL`):
nothing outlives the transaction, so a pooled connection, ours or Supabase's transaction pooler,
never carries one person's identity into another's work. SQLite has no RLS: the permissions
module's `where()` is its enforcement, and this module does nothing there.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc

from core.auth.actor import Actor, current_actor
from core.errors import Action, DatabaseError, ErrorCode, Severity

__all__ = ["AS_ACTOR", "AS_LOGIN_ROLE", "install_claims", "role_of"]

# execution options: run as this Actor instead of the context's; or as the login role itself (migrations)
AS_ACTOR = "studio_actor"
AS_LOGIN_ROLE = "studio_login_role"

_SET = "SELECT set_config('request.jwt.claims', %(claims)s, true), set_config('role', %(role)s, true)"
_INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE of "permission denied to set role"


def role_of(actor: Actor) -> str:
    """The database role a transaction for `actor` runs as."""
    return "service_role" if actor.system else "authenticated"


def install_claims(engine: Engine) -> None:
    """Make every transaction on `engine` (Postgres) begin as its actor."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "begin")
    def _begin_as_actor(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(AS_LOGIN_ROLE):
            return
        actor = options.get(AS_ACTOR) or current_actor(conn.engine)
        role = role_of(actor)
        try:
            conn.exec_driver_sql(_SET, {"claims": json.dumps(actor.claims()), "role": role})
        except sa_exc.ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise _not_a_member(conn, role) from exc


def _not_a_member(conn: Connection, role: str) -> DatabaseError:
    """The login role may not switch to `role`: an operator's grant is missing (migrated by another role?)."""
    login = conn.engine.url.username or "the login role"
    message = (f"The database login role {login!r} may not switch to {role!r}. As a superuser (on Supabase: in "
               f"the SQL editor) run: GRANT authenticated, service_role TO {login}; (README: Postgres roles "
               f"and Row Level Security)")
    return DatabaseError(message, code=ErrorCode.DB_STATEMENT, recoverable=False, severity=Severity.CRITICAL,
                         user_message=message, action=Action.FIX_SETTINGS)
