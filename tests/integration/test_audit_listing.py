"""Listing the audit trail: an admin sees every event, anyone else only their own, nobody none; filters narrow."""

from __future__ import annotations

from datetime import timedelta

from people import person

from core.auth import ANONYMOUS, Role, acting_as, system_actor
from core.auth.audit import SYSTEM, AuditAction, AuditFilter, audit, list_audit_events, target_kinds
from core.store.schema import utcnow
from core.store.tx import write_tx


def _act(engine, actor, action: AuditAction, target_kind: str, target_id: str) -> None:
    with acting_as(actor), write_tx(engine) as conn:
        audit(conn, action, target_kind, target_id, {"by": actor.label})


def _setup(engine):
    a = person(engine, "a@example.com")
    b = person(engine, "b@example.com", Role.REVIEWER)
    admin = person(engine, "boss@example.com", Role.ADMIN)
    _act(engine, a, AuditAction.BATCH_CREATE, "batch", "batch-a")
    _act(engine, b, AuditAction.BATCH_CREATE, "batch", "batch-b")
    _act(engine, system_actor(), AuditAction.CLEANUP_APPLY, "cleanup", None)
    return a, b, admin


def _actions(engine, actor, flt: AuditFilter | None = None) -> list[tuple[str, str | None]]:
    with acting_as(actor):
        page = list_audit_events(engine, flt)
    return [(r["action"], r["target_id"]) for r in page.rows]


def test_an_admin_sees_every_event_and_others_only_their_own(engine):
    """Admin: all (sign-ins too); analyst and reviewer: their own sign-in and action; signed out: none."""
    a, b, admin = _setup(engine)
    assert len(_actions(engine, admin)) == 3 + 3  # three sign-ins, two creates, one cleanup
    assert _actions(engine, a) == [("batch.create", "batch-a"), ("user.sign_in", a.user_id)]
    assert _actions(engine, b) == [("batch.create", "batch-b"), ("user.sign_in", b.user_id)]
    assert _actions(engine, ANONYMOUS) == []


def test_filters_narrow_by_who_action_target_and_time(engine):
    """Each filter keeps only the rows it names; a target id matches by its first characters, literally."""
    a, _b, admin = _setup(engine)
    assert _actions(engine, admin, AuditFilter(actor_id=SYSTEM)) == [("cleanup.apply", None)]
    assert _actions(engine, admin, AuditFilter(actor_id=a.user_id, actions=("batch.create",))) == [
        ("batch.create", "batch-a")]
    assert _actions(engine, admin, AuditFilter(target_kind="batch", target_id="batch-")) == [
        ("batch.create", "batch-b"), ("batch.create", "batch-a")]
    assert _actions(engine, admin, AuditFilter(target_id="batch%")) == []  # a wildcard is a character
    assert _actions(engine, admin, AuditFilter(since=utcnow() + timedelta(minutes=1))) == []


def test_pages_hold_page_size_rows_and_count_them_all(engine):
    """A page of 2 of 6 events says 6 in all and 3 pages; the last page holds what is left."""
    _a, _b, admin = _setup(engine)
    with acting_as(admin):
        first = list_audit_events(engine, page=1, page_size=2)
        last = list_audit_events(engine, page=3, page_size=2)
    assert (first.total, first.pages, len(first.rows), len(last.rows)) == (6, 3, 2, 2)
    assert {r["id"] for r in first.rows}.isdisjoint({r["id"] for r in last.rows})


def test_target_kinds_are_those_of_the_events_one_may_see(engine):
    """An analyst's target kinds come from their own events only; an admin's from all."""
    a, _b, admin = _setup(engine)
    with acting_as(a):
        assert target_kinds(engine) == ["batch", "user"]
    with acting_as(admin):
        assert target_kinds(engine) == ["batch", "cleanup", "user"]
