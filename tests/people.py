"""People for ownership tests: signed-in users with a role, made through the real sign-in path."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Actor, Role, acting_as, system_actor
from core.auth.users import actor_of, sign_in
from core.store.schema import app_users
from core.store.tx import write_tx

__all__ = ["Cast", "cast", "person"]

TEST_ISSUER = "https://issuer.test"


def person(engine: Engine, email: str, role: Role = Role.ANALYST) -> Actor:
    """The user `email` (created at their first sign-in) with role `role`."""
    actor = sign_in(engine, issuer=TEST_ISSUER, subject=f"sub-{email}", email=email, name=email.split("@")[0])
    if actor.role is not role:
        with acting_as(system_actor()), write_tx(engine) as conn:
            conn.execute(app_users.update().where(app_users.c.id == actor.user_id).values(role=role.value))
            row = conn.execute(sa.select(app_users).where(app_users.c.id == actor.user_id)).mappings().one()
        actor = actor_of(row)
    return actor


@dataclass(frozen=True)
class Cast:
    """The people of an ownership test: two analysts, a reviewer and an admin."""

    a: Actor
    b: Actor
    reviewer: Actor
    admin: Actor


def cast(engine: Engine) -> Cast:
    """Analysts a@ and b@, reviewer r@ and admin m@ (example.com), signed in."""
    return Cast(person(engine, "a@example.com"), person(engine, "b@example.com"),
                person(engine, "r@example.com", Role.REVIEWER), person(engine, "m@example.com", Role.ADMIN))
