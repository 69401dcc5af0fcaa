"""Who is acting: a person (signed in, or the local user), the system (worker, scans), or nobody.

The actor of the running code lives in a context variable. Entry points set it: the page run sets
the signed-in person, the CLI the user named by STUDIO_USER, the worker and system jobs the system
(acting for a batch's owner where it writes their rows). A thread started without it gets the
process default: the local user in local mode and in the CLI, nobody once sign-in is configured,
so code that forgets to pass the actor on sees nothing rather than everything.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "ANONYMOUS",
    "Actor",
    "Role",
    "acting_as",
    "current_actor",
    "forget_actor",
    "in_current_context",
    "known_actor",
    "set_actor",
    "set_default_resolver",
    "system_actor",
]

T = TypeVar("T")


class Role(StrEnum):
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    """A person (user_id and role set), the system (`system`), or nobody (neither).

    `on_behalf_of` is the person whose rows the system writes (a batch's owner), so the rows it
    makes carry their id; it grants the system nothing it does not already have.
    """

    user_id: str | None = None
    role: Role | None = None
    email: str | None = None
    name: str | None = None
    system: bool = False
    on_behalf_of: str | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None and not self.system

    @property
    def is_admin(self) -> bool:
        return self.system or self.role is Role.ADMIN

    @property
    def owner_id(self) -> str | None:
        """The id written into the rows this actor creates."""
        return self.on_behalf_of if self.system else self.user_id

    @property
    def label(self) -> str:
        if self.system:
            return "system"
        return self.name or self.email or (self.user_id or "signed out")

    def for_owner(self, owner_id: str | None) -> Actor:
        """The system, acting for `owner_id` (only the system may)."""
        return replace(self, on_behalf_of=owner_id) if self.system else self

    def claims(self) -> dict[str, Any]:
        """The JWT-style claims a Postgres transaction on this actor's behalf carries (RLS reads them)."""
        if self.system:
            return {"role": "service_role", **({"sub": self.on_behalf_of} if self.on_behalf_of else {})}
        if self.user_id is None:
            return {"role": "anon"}
        claims: dict[str, Any] = {"sub": self.user_id, "role": "authenticated",
                                  "studio_role": (self.role or Role.ANALYST).value}
        if self.email:
            claims["email"] = self.email
        return claims


ANONYMOUS = Actor()


def system_actor(on_behalf_of: str | None = None) -> Actor:
    return Actor(system=True, on_behalf_of=on_behalf_of)


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("studio_actor", default=None)
_default_lock = threading.Lock()
_default_resolver: Callable[[Any], Actor] | None = None
_default_peek: Callable[[], Actor | None] | None = None


def set_default_resolver(resolver: Callable[[Any], Actor] | None,
                         peek: Callable[[], Actor | None] | None = None) -> None:
    """How a context with no actor of its own finds one (None: nobody); `peek` answers without I/O."""
    global _default_resolver, _default_peek
    with _default_lock:
        _default_resolver, _default_peek = resolver, peek


def current_actor(engine: Any = None) -> Actor:
    """The actor of the running code: set by the entry point, else the process default.

    `engine` is the database the default (the local user) is looked up in when it must be; the
    configured one when None.
    """
    actor = _current.get()
    if actor is not None:
        return actor
    resolver = _default_resolver
    return resolver(engine) if resolver is not None else ANONYMOUS


def known_actor() -> Actor | None:
    """The actor, if it is known without asking the database (the error recorder must not wait)."""
    actor = _current.get()
    if actor is not None:
        return actor
    peek = _default_peek
    return peek() if peek is not None else (None if _default_resolver is not None else ANONYMOUS)


def forget_actor() -> None:
    """This context acts as the process default again (tests: no actor carries from one test to the next)."""
    _current.set(None)


def set_actor(actor: Actor) -> None:
    """Make `actor` the actor of this context from now on (a page run, a CLI command)."""
    _current.set(actor)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the block as `actor`, then go back to whoever acted before."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def in_current_context(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn`, to run in another thread as the actor of the code that made it."""
    actor = _current.get()

    def run(*args: Any, **kwargs: Any) -> T:
        if actor is None:
            return fn(*args, **kwargs)
        with acting_as(actor):
            return fn(*args, **kwargs)

    return run
