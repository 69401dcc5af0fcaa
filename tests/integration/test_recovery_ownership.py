"""Recovery on both engines: the scans read everyone's rows as the system and list each person what they may act on.

The cleanup is an admin's (or the system's) and writes one audit row in its own transaction;
a checkpoint is its starter's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from audit_support import audit_rows, fail_after
from cli_runner import run_cli
from people import cast

from core import recovery
from core.auth import acting_as, system_actor
from core.auth.audit import AuditAction
from core.batches.service import create_batch
from core.drafts import start_draft
from core.errors import AppError, NotFoundError
from core.generation import GenerationParams
from core.store import resumable
from core.store.schema import batch_jobs, conversation_drafts, recovery_checkpoints, utcnow
from core.store.tx import read_conn, write_tx

PARAMS = GenerationParams(template="tutoring", persona="p", emotion="e", topic="t", turns=4)


def _failed_batch(engine, owner_id: str) -> str:
    bid = create_batch(engine, template="tutoring", count=2)
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(
            status="failed", status_reason="The Anthropic API key was rejected.", owner_id=owner_id))
    return bid


def _orphaned_draft(engine, actor, *, expired: bool = False) -> str:
    """A draft of `actor` left in progress two hours ago (`expired`: past its expiry and grace too)."""
    with acting_as(actor):
        draft = start_draft(engine, PARAMS)
    old = utcnow() - timedelta(hours=2)
    values = {"updated_at": old, "expires_at": utcnow() - timedelta(days=60) if expired else old + timedelta(days=1)}
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == draft.id).values(**values))
    return draft.id


def _cleanup_audits(engine) -> list[dict]:
    return audit_rows(engine, AuditAction.CLEANUP_APPLY)


def _drafts(engine) -> int:
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts)).scalar_one()


def test_each_person_is_listed_what_they_may_act_on(engine):
    """A sees A's failed batch and orphaned draft, B B's, the reviewer neither, the admin both."""
    people = cast(engine)
    a_batch, b_batch = _failed_batch(engine, people.a.user_id), _failed_batch(engine, people.b.user_id)
    a_draft, b_draft = _orphaned_draft(engine, people.a), _orphaned_draft(engine, people.b)
    expected = {people.a: ({a_batch}, {a_draft}), people.b: ({b_batch}, {b_draft}),
                people.reviewer: (set(), set()), people.admin: ({a_batch, b_batch}, {a_draft, b_draft})}
    for actor, (batches, drafts) in expected.items():
        with acting_as(actor):
            found = recovery.scan(engine)
            assert {f["id"] for f in found["failed_batches"]} == batches, actor.email
            assert {f["id"] for f in found["orphaned_drafts"]} == drafts, actor.email
            page = recovery.stopped_batches_page(engine, ("failed_batches",), page_size=1)
            assert page.total == len(batches)  # the page's paged list counts what the scan lists
            assert recovery.needs_attention(engine) == {
                "interrupted_batches": 0, "failed_batches": len(batches), "paused_batches": 0,
                "orphaned_drafts": len(drafts)}


def test_an_orphaned_draft_names_its_owner_by_name(engine):
    """'A generation by ...' shows the person's name, not their id."""
    people = cast(engine)
    _orphaned_draft(engine, people.a)
    with acting_as(people.admin):
        [finding] = recovery.scan(engine)["orphaned_drafts"]
    assert "generation by a stopped" in finding["what_happened"]
    assert people.a.user_id not in finding["what_happened"]
    assert finding["owner_id"] == people.a.user_id and finding["details"]["owner"] == "a"


def test_cli_scan_lists_only_the_callers_own(engine):
    """`recovery scan --json` as B holds B's draft, not A's."""
    import json

    people = cast(engine)
    _orphaned_draft(engine, people.a)
    b_draft = _orphaned_draft(engine, people.b)
    done = run_cli(["recovery", "scan", "--json"], env={"STUDIO_USER": "b@example.com"})
    assert done.returncode == 0
    assert [f["id"] for f in json.loads(done.stdout)["orphaned_drafts"]] == [b_draft]


def test_only_an_admin_applies_the_cleanup_and_it_writes_one_audit_row(engine):
    """An analyst's or a reviewer's cleanup is refused and removes nothing; the admin's removes and is audited once."""
    people = cast(engine)
    _orphaned_draft(engine, people.a, expired=True)
    _orphaned_draft(engine, people.b, expired=True)
    for actor in (people.a, people.reviewer):
        with acting_as(actor):
            assert not recovery.may_clean_up()
            with pytest.raises(NotFoundError):
                recovery.apply_cleanup(engine)
    refused = run_cli(["recovery", "cleanup", "--apply"], env={"STUDIO_USER": "a@example.com"})
    assert refused.returncode == 1 and "Only an admin" in refused.stderr
    assert _drafts(engine) == 2 and _cleanup_audits(engine) == []
    with acting_as(people.admin):
        assert recovery.cleanup_preview(engine)["drafts"] == 2
        removed = recovery.apply_cleanup(engine)
    assert removed["drafts"] == 2 and _drafts(engine) == 0
    [row] = _cleanup_audits(engine)
    assert row["actor_id"] == people.admin.user_id and row["detail"]["removed"] == removed


def test_the_systems_cleanup_with_nothing_to_remove_writes_no_audit_row(engine):
    """The workers' interval runs as the system: an empty run leaves the audit trail alone, one that removes does not."""
    people = cast(engine)
    with acting_as(system_actor()):
        assert sum(recovery.apply_cleanup(engine).values()) == 0
    assert _cleanup_audits(engine) == []
    _orphaned_draft(engine, people.a, expired=True)
    with acting_as(system_actor()):
        recovery.apply_cleanup(engine)
    [row] = _cleanup_audits(engine)
    assert row["actor_id"] is None and row["actor_label"] == "system"


def test_a_cleanup_that_fails_after_its_write_keeps_the_drafts_and_leaves_no_audit_row(engine, monkeypatch):
    """A failure after the audit row is written rolls the removal and the row back together."""
    people = cast(engine)
    _orphaned_draft(engine, people.a, expired=True)
    monkeypatch.setattr(recovery, "audit", fail_after(recovery.audit))
    with acting_as(people.admin), pytest.raises(AppError):
        recovery.apply_cleanup(engine)
    assert _drafts(engine) == 1 and _cleanup_audits(engine) == []


def _checkpoint(engine, operation_id: str) -> dict:
    with acting_as(system_actor()), read_conn(engine) as conn:
        return dict(conn.execute(sa.select(recovery_checkpoints).where(
            recovery_checkpoints.c.operation_id == operation_id)).mappings().one())


def test_a_checkpoint_is_its_starters_and_no_one_else_advances_or_finishes_it(engine):
    """A's checkpoint carries A's id; B's advance and finish of it change nothing; A resumes it; the system's has none."""
    people = cast(engine)
    with acting_as(people.a):
        cp = resumable.begin(engine, "resolve", "op-a", {"by": "a"})
    assert _checkpoint(engine, "op-a")["owner_id"] == people.a.user_id
    with acting_as(people.b):
        with write_tx(engine) as conn:
            resumable.advance(conn, cp, done=5, after=9)
        resumable.finish(engine, cp)
    row = _checkpoint(engine, "op-a")
    assert row["completed_count"] == 0 and row["expires_at"] is None
    with acting_as(people.a):
        again = resumable.begin(engine, "resolve", "op-a", {"by": "someone else"})
        assert again.resumed and again.params == {"by": "a"}
        with write_tx(engine) as conn:
            resumable.advance(conn, again, done=5, after=9)
    assert _checkpoint(engine, "op-a")["completed_count"] == 5
    with acting_as(system_actor()):
        resumable.begin(engine, "retention", "op-system", {})
    assert _checkpoint(engine, "op-system")["owner_id"] is None
