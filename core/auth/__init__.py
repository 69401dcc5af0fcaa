"""Users, roles, the one permissions module, claims for Row Level Security, the audit trail.

Import light names from here; `core.auth.users` and `core.auth.audit` (which use the store)
are imported as modules where needed, so the store can import `core.auth.claims` without a cycle.
"""

from core.auth import local as _local  # noqa: F401 - sets the process default actor (the local user)
from core.auth.actor import (
    ANONYMOUS,
    Actor,
    Role,
    acting_as,
    current_actor,
    in_current_context,
    set_actor,
    set_default_resolver,
    system_actor,
)
from core.auth.permissions import Action, Kind, Scope, may, require, scope, where

__all__ = [
    "ANONYMOUS",
    "Action",
    "Actor",
    "Kind",
    "Role",
    "Scope",
    "acting_as",
    "current_actor",
    "in_current_context",
    "may",
    "require",
    "scope",
    "set_actor",
    "set_default_resolver",
    "system_actor",
    "where",
]
