"""`python -m core users add|list|role`: admins manage people; anyone else finds none; bad input exits 2."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cli_runner import run_cli
from people import TEST_ISSUER, person

from core.auth import Role, acting_as, system_actor
from core.auth.audit import AuditAction
from core.auth.users import identity_of, list_users, local_actor, sign_in
from core.store.schema import app_users, audit_events


def _audits(engine, action: AuditAction) -> list:
    with acting_as(system_actor()), engine.connect() as conn:
        return conn.execute(sa.select(audit_events).where(audit_events.c.action == action.value)).mappings().all()


def _role_of(engine, email: str) -> str | None:
    with acting_as(system_actor()), engine.connect() as conn:
        return conn.execute(sa.select(app_users.c.role).where(app_users.c.email == email)).scalar()


def test_an_added_person_takes_their_account_and_role_at_first_sign_in(engine):
    """`users add` as an admin waits for the email; the first sign-in with it gets that account and role."""
    done = run_cli(["users", "add", "b@example.com", "--role", "reviewer"])
    assert done.returncode == 0, done.stderr
    assert "added b@example.com as reviewer" in done.stdout
    b = sign_in(engine, issuer=TEST_ISSUER, subject="sub-b", email="B@example.com", name="Bea")
    assert b.role is Role.REVIEWER and b.user_id in done.stdout
    assert len(_audits(engine, AuditAction.USER_ADD)) == 1


def test_users_list_json_is_a_list_of_objects_with_id_email_and_role(engine):
    """`users list --json` prints every user as an object with at least id, email and role."""
    b = person(engine, "b@example.com", Role.REVIEWER)
    done = run_cli(["users", "list", "--json"])
    assert done.returncode == 0, done.stderr
    users = json.loads(done.stdout)
    assert isinstance(users, list) and all({"id", "email", "role"} <= set(u) for u in users)
    assert {"id": b.user_id, "email": "b@example.com", "role": "reviewer"}.items() <= next(
        u for u in users if u["id"] == b.user_id).items()
    assert local_actor(engine).user_id in {u["id"] for u in users}


def test_users_list_prints_one_line_a_user(engine):
    """Without --json, each user is one line with id, role and email."""
    b = person(engine, "b@example.com")
    done = run_cli(["users", "list"])
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if b.user_id in x)
    assert "analyst" in line and "b@example.com" in line


def test_users_role_changes_the_role_and_audits_it_once(engine):
    """`users role EMAIL ROLE` changes the role and writes one audit row with old and new."""
    person(engine, "b@example.com")
    done = run_cli(["users", "role", "b@example.com", "admin"])
    assert done.returncode == 0, done.stderr
    assert _role_of(engine, "b@example.com") == "admin"
    rows = _audits(engine, AuditAction.ROLE_CHANGE)
    assert len(rows) == 1 and rows[0]["detail"] == {"old": "analyst", "new": "admin"}


def test_a_non_admin_finds_no_users_and_changes_nothing(engine):
    """Run as an analyst or a reviewer, every users command answers 'not found' (exit 1) and writes nothing."""
    person(engine, "b@example.com")
    for role in (Role.ANALYST, Role.REVIEWER):
        me = person(engine, f"{role.value}@example.com", role)
        env = {"STUDIO_USER": me.email or ""}
        listed = run_cli(["users", "list", "--json"], env=env)
        assert listed.returncode == 1 and listed.stdout == ""
        added = run_cli(["users", "add", "c@example.com"], env=env)
        assert added.returncode == 1
        changed = run_cli(["users", "role", "b@example.com", "admin"], env=env)
        assert changed.returncode == 1 and "There is no user 'b@example.com'" in changed.stderr
    assert _role_of(engine, "b@example.com") == "analyst" and _role_of(engine, "c@example.com") is None
    assert _audits(engine, AuditAction.ROLE_CHANGE) == [] and _audits(engine, AuditAction.USER_ADD) == []


def test_a_bad_email_or_role_exits_2_naming_the_argument(engine):
    """A malformed email or an unknown role is refused before anything is read, naming EMAIL, --role or ROLE."""
    bad_email = run_cli(["users", "add", "not an email"])
    assert bad_email.returncode == 2 and "EMAIL" in bad_email.stderr and "is not an email address" in bad_email.stderr
    bad_role = run_cli(["users", "add", "c@example.com", "--role", "boss"])
    assert bad_role.returncode == 2 and "--role" in bad_role.stderr and "there is no role 'boss'" in bad_role.stderr
    bad_new_role = run_cli(["users", "role", "c@example.com", "boss"])
    assert bad_new_role.returncode == 2 and "ROLE" in bad_new_role.stderr
    assert _role_of(engine, "c@example.com") is None


def test_an_email_already_taken_is_refused_with_exit_2(engine):
    """Adding an email some user already has exits 2 and names the email."""
    person(engine, "b@example.com")
    done = run_cli(["users", "add", "B@example.com"])
    assert done.returncode == 2 and "already exists" in done.stderr


def test_the_last_admin_cannot_be_made_anything_else(engine):
    """Demoting the only admin is refused (exit 2) and leaves no audit row; with a second admin it works."""
    me = local_actor(engine)
    done = run_cli(["users", "role", me.name or "", "analyst"])
    assert done.returncode == 2 and "only admin" in done.stderr
    assert _audits(engine, AuditAction.ROLE_CHANGE) == []
    person(engine, "b@example.com", Role.ADMIN)
    assert run_cli(["users", "role", me.name or "", "reviewer"]).returncode == 0


def test_a_display_name_shaped_like_an_email_never_stands_for_that_email(engine):
    """Someone who named themselves 'boss@example.com' is not the one `users role boss@example.com` changes."""
    mallory = sign_in(engine, issuer=TEST_ISSUER, subject="sub-m", email="m@example.com", name="boss@example.com")
    boss = sign_in(engine, issuer=TEST_ISSUER, subject="sub-boss", email="boss@example.com", name="Boss")
    assert run_cli(["users", "role", "boss@example.com", "admin"]).returncode == 0
    assert _role_of(engine, "boss@example.com") == "admin" and _role_of(engine, "m@example.com") == "analyst"
    assert boss.user_id != mallory.user_id


def test_identity_of_needs_an_issuer_and_a_subject():
    """Claims without iss or sub name nobody; with both, the email and name come along."""
    assert identity_of({"sub": "x", "email": "a@example.com"}) is None
    assert identity_of({"iss": "https://idp", "sub": " "}) is None
    ident = identity_of({"iss": "https://idp", "sub": "x", "email": "a@example.com", "preferred_username": "ada"})
    assert ident is not None and (ident.email, ident.name) == ("a@example.com", "ada")


def test_identity_of_drops_an_unverified_or_malformed_email():
    """An email marked unverified, or one that is not an address, is not kept (it would grant admin or a claim)."""
    for claims in ({"email_verified": False}, {"email_verified": "false"}):
        ident = identity_of({"iss": "https://idp", "sub": "x", "email": "boss@example.com", **claims})
        assert ident is not None and ident.email is None
    ident = identity_of({"iss": "https://idp", "sub": "x", "email": "nobody"})
    assert ident is not None and ident.email is None


def test_a_secret_shaped_email_from_the_provider_is_not_stored(engine):
    """A key in the provider's email claim is dropped at sign-in, so no page or list can show it."""

    key = "sk-ant-api03-" + "Q7w8E9r0T1y2" * 6
    actor = sign_in(engine, issuer="https://issuer.test", subject="keyed", email=f"{key}@x.test", name="Kay")
    assert actor.email is None
    with acting_as(person(engine, "boss@example.com", Role.ADMIN)):
        listed = list_users(engine)
    assert all(key not in str(u) for u in listed)
