"""Drafts on both engines: only their owner (or an admin) sees, resumes or discards them, in the services and the CLI.

A generation running on its own thread acts as the person who started it, even where the
process default is nobody (sign-in configured), and a person runs one generation at a time.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from cli_runner import run_cli
from people import cast

from core.auth import acting_as, system_actor
from core.auth.local import use_local_user_by_default, use_nobody_by_default
from core.drafts import DraftSession, discard_draft, get_draft, list_unfinished_drafts, start_draft
from core.errors import ErrorCode, NotFoundError, ValidationError
from core.generation import GenerationParams
from core.store.schema import conversation_drafts, conversations
from core.store.tx import read_conn

PARAMS = GenerationParams(template="tutoring", persona="a first-year nursing student", emotion="nervous",
                          topic="recursion in Python", turns=4)

SANDBOX = {"seed": 11, "latency_ms": 0, "tokens_per_s": 50_000.0}
SANDBOX_ENV = {"STUDIO_RATE_LIMIT_RPM": "100000"}


def _status(engine, draft_id: str) -> str:
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(conversation_drafts.c.status).where(conversation_drafts.c.id == draft_id)
                            ).scalar_one()


def _conversation_of(engine, draft_id: str):
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(conversations).where(conversations.c.draft_id == draft_id)).mappings().first()


def _refusals(engine, draft_id: str) -> list[NotFoundError]:
    """What get, load (to resume) and discard of `draft_id` raise for the running actor."""
    found = []
    for call in (get_draft, DraftSession.load, discard_draft):
        with pytest.raises(NotFoundError) as refused:
            call(engine, draft_id)
        found.append(refused.value)
    return found


def test_a_draft_is_its_owners_and_someone_elses_answers_like_an_unknown_id(engine):
    """B (and the reviewer) get, resume or discard A's draft exactly as an id that does not exist."""
    people = cast(engine)
    with acting_as(people.a):
        a_draft = start_draft(engine, PARAMS)
    assert a_draft.owner_id == people.a.user_id
    unknown = str(uuid.uuid4())
    for other in (people.b, people.reviewer):
        with acting_as(other):
            theirs, nobodys = _refusals(engine, a_draft.id), _refusals(engine, unknown)
            assert [(e.code, e.user_message) for e in theirs] == [(e.code, e.user_message) for e in nobodys]
            assert {e.code for e in theirs} == {ErrorCode.UNKNOWN_DRAFT}
            assert list_unfinished_drafts(engine, everyone=True) == []
    assert _status(engine, a_draft.id) == "in_progress"  # nobody else's discard touched it


def test_the_owner_and_an_admin_reach_a_draft_and_only_the_owner_lists_it_as_their_own(engine):
    """A lists and loads A's draft; the admin loads it and lists it among everyone's, not among their own."""
    people = cast(engine)
    with acting_as(people.a):
        a_draft = start_draft(engine, PARAMS)
        assert [d["id"] for d in list_unfinished_drafts(engine)] == [a_draft.id]
        assert DraftSession.load(engine, a_draft.id).owner_id == people.a.user_id
    with acting_as(people.admin):
        assert list_unfinished_drafts(engine) == []
        assert [d["id"] for d in list_unfinished_drafts(engine, everyone=True)] == [a_draft.id]
        assert get_draft(engine, a_draft.id)["user_id"] == people.a.user_id
        assert discard_draft(engine, a_draft.id) is True
    assert _status(engine, a_draft.id) == "discarded"


def test_nobody_signed_in_cannot_start_a_draft(engine):
    """With no person acting (signed out), starting a draft is refused and nothing is saved."""
    from core.auth import ANONYMOUS

    with acting_as(ANONYMOUS), pytest.raises(NotFoundError):
        start_draft(engine, PARAMS)
    with acting_as(system_actor()), read_conn(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts)).scalar_one() == 0


def test_a_generation_on_its_own_thread_saves_as_the_person_who_started_it(engine, sandbox):
    """Started by A with the process default set to nobody, the job's thread writes A's conversation."""
    from core.ui.generation_job import job_for

    people = cast(engine)
    use_nobody_by_default()  # as once sign-in is configured: a thread nobody told acts as nobody
    try:
        with acting_as(people.a):
            draft = start_draft(engine, PARAMS)
            job = job_for(draft)
        job.join(60)
    finally:
        use_local_user_by_default()
    assert job.done and job.error is None and job.result is not None
    conv = _conversation_of(engine, draft.id)
    assert conv["owner_id"] == people.a.user_id and conv["created_by"] == "a"
    assert _status(engine, draft.id) == "completed"


def test_a_person_runs_one_generation_at_a_time_and_another_person_is_not_held_up(engine, sandbox):
    """While A's job writes, A starting another is refused; B's starts; A's own draft joins its running job."""
    from core.ui.generation_job import job_for, running_job_of

    people = cast(engine)
    sandbox.configure(latency_ms=400)
    jobs = []
    try:
        with acting_as(people.a):
            first = start_draft(engine, PARAMS)
            jobs.append(job_for(first))
            second = start_draft(engine, PARAMS)
            with pytest.raises(ValidationError) as refused:
                job_for(second)
            assert refused.value.code == ErrorCode.GENERATION_RUNNING
            assert job_for(DraftSession.load(engine, first.id)) is jobs[0]
        with acting_as(people.b):
            jobs.append(job_for(start_draft(engine, PARAMS)))
        assert running_job_of(people.a.user_id) is jobs[0] and running_job_of(people.b.user_id) is jobs[1]
        assert not jobs[1].done
    finally:
        for job in jobs:
            job.cancel()
            job.join(30)


def _as(email: str) -> dict[str, str]:
    return {"STUDIO_USER": email}


def test_cli_answers_someone_elses_draft_like_an_unknown_one(engine):
    """`drafts resume` and `drafts discard` of A's draft exit 1 for B and the reviewer, worded as an unknown id."""
    people = cast(engine)
    with acting_as(people.a):
        a_draft = start_draft(engine, PARAMS)
    unknown = str(uuid.uuid4())
    for email in ("b@example.com", "r@example.com"):
        for action in ("resume", "discard"):
            theirs = run_cli(["drafts", action, a_draft.id], env=_as(email))
            nobodys = run_cli(["drafts", action, unknown], env=_as(email))
            assert theirs.returncode == nobodys.returncode == 1, (email, action, theirs.stderr)
            assert theirs.stderr == nobodys.stderr and "no longer exists" in theirs.stderr
        listed = run_cli(["drafts", "list", "--all", "--json"], env=_as(email))
        assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert _status(engine, a_draft.id) == "in_progress"
    mine = run_cli(["drafts", "list", "--json"], env=_as("a@example.com"))
    assert [d["id"] for d in json.loads(mine.stdout)] == [a_draft.id]


def test_cli_resume_finishes_the_owners_draft_as_their_conversation(engine, sandbox):
    """A resuming A's draft from the CLI saves the conversation with A's id; the draft is completed."""
    people = cast(engine)
    with acting_as(people.a):
        a_draft = start_draft(engine, PARAMS)
    done = run_cli(["drafts", "resume", a_draft.id, "--json"], env=_as("a@example.com"))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["conversation"]["turns"]) == 4
    assert _conversation_of(engine, a_draft.id)["owner_id"] == people.a.user_id
    assert _status(engine, a_draft.id) == "completed"
