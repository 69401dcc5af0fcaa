"""People: found or created at sign-in (OIDC issuer + subject), or the local user(s) without sign-in.

A person is created as an analyst, or as an admin when their email is in STUDIO_ADMIN_EMAILS.
The local user the migration made (issuer "local", subject the STUDIO_USER name) is an admin: it
made everything before there were users. People added ahead of their first sign-in (`users add`)
wait under the issuer "pending" with their email as subject, and take their real identity when
they first sign in with that email.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import Actor, Role, acting_as, current_actor, system_actor
from core.auth.audit import AuditAction, audit
from core.auth.permissions import Action, Kind, require
from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.redact import redact_cut
from core.store.schema import app_users, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["LOCAL_ISSUER", "PENDING_ISSUER", "Identity", "actor_of", "add_user", "checked_email", "find_existing",
           "find_user",
           "identity_of", "list_users", "local_actor", "names_of", "set_role", "sign_in"]

LOCAL_ISSUER = "local"
PENDING_ISSUER = "pending"
_TEXT_MAX = 200
_EMAIL_MAX = 320


@dataclass(frozen=True)
class Identity:
    """Who an OIDC sign-in says a person is: the issuer and subject name them; email and name describe them."""

    issuer: str
    subject: str
    email: str | None
    name: str | None


def identity_of(claims: Mapping[str, Any]) -> Identity | None:
    """The identity in an ID token's claims (`st.user`), or None when it lacks an issuer or a subject.

    An email the provider marks unverified (`email_verified` false) is dropped: an admin email
    (STUDIO_ADMIN_EMAILS) and an invitation (`users add`) trust the address, so one a person only
    typed in must not count.
    """
    issuer, subject = str(claims.get("iss") or "").strip(), str(claims.get("sub") or "").strip()
    if not issuer or not subject:
        return None
    email = str(claims.get("email") or "").strip() or None
    if (claims.get("email_verified") is False or str(claims.get("email_verified")).lower() == "false"
            or (email and ("@" not in email or len(email) > 320))):
        email = None
    name = str(claims.get("name") or claims.get("preferred_username") or "").strip() or None
    return Identity(issuer=issuer[:255], subject=subject[:255], email=email, name=name)


def actor_of(row: Any) -> Actor:
    return Actor(user_id=row["id"], role=Role(row["role"]), email=row["email"], name=row["display_name"])


def _role_for(email: str | None, default: Role = Role.ANALYST) -> Role:
    return Role.ADMIN if email and email.strip().lower() in get_settings().admin_email_set else default


def _refuse(message: str, field: str) -> ValidationError:
    return ValidationError(message, code=ErrorCode.INVALID_INPUT, field=field, user_message=message)


def checked_email(value: str) -> str:
    """`value` as an email address (trimmed), or refused with a ValidationError on the field "email"."""
    email = value.strip()
    if "@" not in email or " " in email or len(email) > 320:
        raise _refuse(f"{redact_cut(value, 80)!r} is not an email address.", "email")
    return email


def _row(conn: Connection, cond: Any) -> Any:
    return conn.execute(sa.select(app_users).where(cond).order_by(app_users.c.created_at)).mappings().first()


def _as_system(engine: Engine) -> Connection:
    """A connection that reads and writes users as the system (a person cannot see others' rows)."""
    from core.auth.claims import AS_ACTOR

    return engine.connect().execution_options(**{AS_ACTOR: system_actor()})


def _insert(conn: Connection, *, issuer: str, subject: str, email: str | None, name: str | None,
            role: Role) -> Any:
    uid = str(uuid.uuid4())
    conn.execute(app_users.insert().values(
        id=uid, issuer=issuer, subject=subject, email=email, display_name=name, role=role.value,
        created_at=utcnow(), last_seen_at=utcnow()))
    return _row(conn, app_users.c.id == uid)


def local_actor(engine: Engine, name: str | None = None) -> Actor:
    """The local user `name` (default STUDIO_USER): an existing user by email or name, else created."""
    wanted = (name or get_settings().user_name).strip()
    with _as_system(engine) as conn, conn.begin():
        row = _row(conn, sa.and_(app_users.c.issuer == LOCAL_ISSUER, app_users.c.subject == wanted))
        if row is None:
            row = _row(conn, sa.or_(sa.func.lower(app_users.c.email) == wanted.lower(),
                                    app_users.c.display_name == wanted))
        if row is None:
            email = wanted if "@" in wanted else None
            row = _insert(conn, issuer=LOCAL_ISSUER, subject=wanted, email=email, name=wanted,
                          role=_role_for(email))
    return actor_of(row)


def sign_in(engine: Engine, *, issuer: str, subject: str, email: str | None, name: str | None) -> Actor:
    """The person an OIDC sign-in names: found, claimed from a pending invitation, or created."""
    email = (email or "").strip() or None
    if email and redact_cut(email, _EMAIL_MAX) != email:
        email = None  # secret-shaped (or too long): not stored, not matched against admins or invitations
    name = redact_cut(name, _TEXT_MAX) if name else None
    settings = get_settings()
    with _as_system(engine) as conn, conn.begin():
        row = _row(conn, sa.and_(app_users.c.issuer == issuer, app_users.c.subject == subject))
        first = row is None
        if row is None and email:
            pending = _row(conn, sa.and_(app_users.c.issuer == PENDING_ISSUER,
                                         sa.func.lower(app_users.c.subject) == email.lower()))
            if pending is not None:
                conn.execute(app_users.update().where(app_users.c.id == pending["id"]).values(
                    issuer=issuer, subject=subject))
                row = _row(conn, app_users.c.id == pending["id"])
        if row is None:
            row = _insert(conn, issuer=issuer, subject=subject, email=email, name=name, role=_role_for(email))
        changes: dict[str, Any] = {}
        if _role_for(email, Role(row["role"])) is Role.ADMIN and row["role"] != Role.ADMIN.value:
            changes["role"] = Role.ADMIN.value
        if email and row["email"] != email:
            changes["email"] = email
        if name and row["display_name"] != name:
            changes["display_name"] = name
        seen = row["last_seen_at"]
        if first or changes or seen is None or utcnow() - seen > timedelta(seconds=settings.user_last_seen_interval_s):
            changes["last_seen_at"] = utcnow()
        if changes:
            conn.execute(app_users.update().where(app_users.c.id == row["id"]).values(**changes))
            row = _row(conn, app_users.c.id == row["id"])
        actor = actor_of(row)
        if "last_seen_at" in changes:  # a sign-in, not every page run of a signed-in session
            audit(conn, AuditAction.SIGN_IN, "user", actor.user_id, {"issuer": issuer}, actor=actor)
    return actor


def _named(conn: Connection, ref: str) -> Any:
    """The user `ref` names: by id, else email, else local name, else display name, in that order.

    The order matters: a display name comes from the identity provider and anyone may choose
    one, so a person who calls themselves "boss@example.com" is never taken for that email's owner.
    """
    wanted = ref.strip()
    for cond in (app_users.c.id == wanted, sa.func.lower(app_users.c.email) == wanted.lower(),
                 sa.and_(app_users.c.issuer == LOCAL_ISSUER, app_users.c.subject == wanted),
                 app_users.c.display_name == wanted):
        row = _row(conn, cond)
        if row is not None:
            return row
    return None


def find_existing(engine: Engine, ref: str) -> Actor | None:
    """The user whose id, email, name or local name is `ref`, looked up by the system (the CLI's start)."""
    with _as_system(engine) as conn:
        row = _named(conn, ref)
    return None if row is None else actor_of(row)


def find_user(engine: Engine, ref: str) -> Actor | None:
    """The user whose email, name or local name is `ref` (admins only; others find nobody)."""
    require(current_actor(), Action.VIEW, Kind.USERS, None, missing=f"There is no user {redact_cut(ref, 80)!r}.")
    return find_existing(engine, ref)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every user, oldest first (admins only)."""
    require(current_actor(), Action.VIEW, Kind.USERS, None, missing="Only an admin can list users.")
    with read_conn(engine) as conn:
        rows = conn.execute(sa.select(app_users).order_by(app_users.c.created_at, app_users.c.id)).mappings().all()
    return [{"id": r["id"], "email": r["email"], "name": r["display_name"], "role": r["role"],
             "signed_in": r["issuer"] not in (PENDING_ISSUER,), "created_at": r["created_at"],
             "last_seen_at": r["last_seen_at"]} for r in rows]


def add_user(engine: Engine, email: str, role: Role | str = Role.ANALYST) -> Actor:
    """Add a person ahead of their first sign-in (admins only); refused if the email is taken."""
    actor = current_actor()
    require(actor, Action.MANAGE, Kind.USERS, None, missing="Only an admin can add users.")
    email = checked_email(email)
    role = _as_role(role)
    with write_tx(engine) as conn:
        if _row(conn, sa.func.lower(app_users.c.email) == email.lower()) is not None:
            raise _refuse(f"A user with the email {email!r} already exists.", "email")
        row = _insert(conn, issuer=PENDING_ISSUER, subject=email, email=email, name=None, role=role)
        audit(conn, AuditAction.USER_ADD, "user", row["id"], {"email": email, "role": role.value})
    return actor_of(row)


def set_role(engine: Engine, ref: str, role: Role | str) -> Actor:
    """Give the user `ref` (id, email or name) the role `role` (admins only; the last admin stays one)."""
    actor = current_actor()
    missing = f"There is no user {redact_cut(ref, 80)!r}."
    require(actor, Action.MANAGE, Kind.USERS, None, missing=missing)
    role = _as_role(role)
    with write_tx(engine) as conn:
        row = _named(conn, ref)
        if row is None:
            from core.errors import NotFoundError

            raise NotFoundError(missing, user_message=missing)
        if row["role"] == Role.ADMIN.value and role is not Role.ADMIN and _admins(conn) <= 1:
            raise _refuse(f"{redact_cut(row['display_name'] or row['email'] or ref, 80)!r} is the only admin; "
                          "make someone else an admin first.", "role")
        if row["role"] != role.value:
            conn.execute(app_users.update().where(app_users.c.id == row["id"]).values(role=role.value))
            audit(conn, AuditAction.ROLE_CHANGE, "user", row["id"], {"old": row["role"], "new": role.value})
        row = _row(conn, app_users.c.id == row["id"])
    return actor_of(row)


def _admins(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(app_users)
                            .where(app_users.c.role == Role.ADMIN.value)).scalar_one())


def _as_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise _refuse(f"There is no role {redact_cut(str(role), 40)!r}; choose analyst, reviewer or admin.",
                      "role") from None


def names_of(engine: Engine, ids: Iterable[str | None]) -> dict[str, str]:
    """Display names (else emails) of the users `ids`, for showing who owns or did something."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    with acting_as(system_actor()), read_conn(engine) as conn:
        rows = conn.execute(sa.select(app_users.c.id, app_users.c.display_name, app_users.c.email)
                            .where(app_users.c.id.in_(wanted))).all()
    return {r.id: r.display_name or r.email or r.id[:8] for r in rows}
