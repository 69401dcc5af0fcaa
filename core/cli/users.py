"""`python -m core users add|list|role`: the people who may sign in, and their roles (admins only).

Run as the user STUDIO_USER names, like every command: anyone but an admin is told the users are
not there (exit 1). A malformed email or an unknown role is refused before anything is read (exit 2).
"""

from __future__ import annotations

import argparse
import json

from core.auth import Role
from core.auth.users import add_user, checked_email, list_users, set_role
from core.cli import add_action, add_group
from core.cli.args import one_of
from core.errors import ValidationError
from core.store import get_engine

_ROLES = [r.value for r in Role]
role_name = one_of(lambda: _ROLES, "role")


def email_address(text: str) -> str:
    try:
        return checked_email(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.user_message) from None


email_address.__name__ = "email"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = add_group(sub, "users", help="add people ahead of their first sign-in, list them, change roles (admins)")
    p = add_action(users, "add", _add, help="add a person by email; they take this account at their first sign-in")
    p.add_argument("email", metavar="EMAIL", type=email_address)
    p.add_argument("--role", type=role_name, default=Role.ANALYST.value, help=f"one of {', '.join(_ROLES)}")
    p = add_action(users, "list", _list, help="every user: id, email, name, role, created, last seen")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p = add_action(users, "role", _role, help="give a user (by email or name) another role")
    p.add_argument("user", metavar="EMAIL", help="the user's email (or name, for a local user)")
    p.add_argument("role", metavar="ROLE", type=role_name, help=f"one of {', '.join(_ROLES)}")


def _add(args: argparse.Namespace) -> int:
    added = add_user(get_engine(), args.email, args.role)
    print(f"added {added.email} as {added.role} (id {added.user_id}); they take this account at their first sign-in")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = list_users(get_engine())
    if args.json:
        print(json.dumps(users, indent=2, default=str))
        return 0
    for u in users:
        seen = u["last_seen_at"].isoformat(timespec="seconds") if u["last_seen_at"] else "never"
        print(f"{u['id']}  {u['role']:<8}  {u['email'] or '-':<32}  {u['name'] or '-'}  (last seen {seen})")
    return 0


def _role(args: argparse.Namespace) -> int:
    changed = set_role(get_engine(), args.user, args.role)
    print(f"{changed.email or changed.name} is now {changed.role}")
    return 0
