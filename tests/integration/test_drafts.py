"""Drafts on both engines: autosave at turns and intervals, listing, discard, and resume by prefill after a cut stream."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from people import person

from core.auth import acting_as
from core.config import override_settings
from core.drafts import (
    DraftSession,
    discard_draft,
    get_draft,
    list_unfinished_drafts,
    resume_draft,
    start_draft,
    unfinished_drafts_page,
)
from core.errors import AppError
from core.generation import GenerationParams
from core.resilience import reset_breakers
from core.store.schema import conversation_drafts, conversations

PARAMS = GenerationParams(template="tutoring", persona="a first-year nursing student", emotion="nervous",
                          topic="recursion in Python", turns=6)


SANDBOX = {"seed": 7, "latency_ms": 0, "tokens_per_s": 50_000.0}
SANDBOX_ENV = {"STUDIO_RATE_LIMIT_RPM": "100000"}


def _saved(engine, draft_id):
    return get_draft(engine, draft_id)


def test_autosave_at_each_finished_turn(engine):
    """A new User:/Assistant: block saves the draft with the finished turns, even inside the interval."""
    override_settings(autosave_interval_s=3600)
    draft = start_draft(engine, PARAMS)
    assert draft.on_delta("User: I keep getting") is False
    assert draft.on_delta(" lost.\n\nAssis") is False
    assert draft.on_delta("tant: Let's look") is True  # the user's turn is complete now
    row = _saved(engine, draft.id)
    assert row["turns"] == [{"role": "user", "content": "I keep getting lost."}]
    assert row["partial_text"].endswith("Let's look") and row["progress"] == pytest.approx(1 / 6, abs=1e-3)


def test_a_draft_is_saved_with_a_credential_the_model_wrote_redacted(engine):
    """The autosaved partial text and finished turns carry [REDACTED], not the key-shaped string."""
    from redaction_cases import ANTHROPIC_KEY

    override_settings(autosave_interval_s=3600)
    draft = start_draft(engine, PARAMS)
    draft.on_delta(f"User: my key {ANTHROPIC_KEY} stopped working\n\n")
    assert draft.on_delta("Assistant: Rotate it") is True
    row = _saved(engine, draft.id)
    assert row["turns"] == [{"role": "user", "content": "my key [REDACTED] stopped working"}]
    assert ANTHROPIC_KEY not in row["partial_text"] and row["partial_text"].endswith("Rotate it")


def test_autosave_when_the_interval_has_passed(engine):
    """Inside one turn the draft is saved once the autosave interval has passed since the last save."""
    override_settings(autosave_interval_s=0.05)
    draft = start_draft(engine, PARAMS)
    draft._saved_mono -= 1.0  # as if the last save was a second ago
    assert draft.on_delta("User: hello") is True
    assert _saved(engine, draft.id)["partial_text"] == "User: hello"
    assert draft.seconds_since_save < 1.0


def test_unfinished_drafts_are_listed_and_discarded(engine):
    """A user's in-progress drafts are listed (not other users'); a discarded one disappears from the list."""
    ana, bo = person(engine, "ana@example.com"), person(engine, "bo@example.com")
    with acting_as(ana):
        mine = start_draft(engine, PARAMS)
    with acting_as(bo):
        start_draft(engine, PARAMS)
    with acting_as(ana):
        assert [d["id"] for d in list_unfinished_drafts(engine)] == [mine.id]
        assert discard_draft(engine, mine.id) is True
        assert list_unfinished_drafts(engine) == []
        assert discard_draft(engine, mine.id) is False


def test_unfinished_drafts_page_with_a_true_total_and_leave_out_the_one_being_written(engine):
    """Four drafts, one being written: the other three page two at a time, three in all."""
    with acting_as(person(engine, "ana@example.com")):
        made = [start_draft(engine, PARAMS).id for _ in range(4)]
        first, second = (unfinished_drafts_page(engine, page=p, page_size=2, exclude=made[0]) for p in (1, 2))
        assert (first.total, len(first.rows), len(second.rows)) == (3, 2, 1)
        assert {d["id"] for d in first.rows + second.rows} == set(made[1:])
        assert unfinished_drafts_page(engine).total == 4


def test_a_finished_draft_becomes_a_conversation(engine, sandbox):
    """run() streams, autosaves, then writes the conversation, its owner's, and completes the draft in one go."""
    ana = person(engine, "ana@example.com")
    with acting_as(ana):
        draft = start_draft(engine, PARAMS)
        seen: list[str] = []
        result = draft.run(on_delta=seen.append)
    assert "".join(seen) and len(result.conversation.turns) == 6
    row = _saved(engine, draft.id)
    assert row["status"] == "completed" and row["conversation_id"] == draft.conversation_id
    with engine.connect() as conn:
        conv = conn.execute(sa.select(conversations).where(conversations.c.draft_id == draft.id)).mappings().one()
    assert conv["turn_count"] == 6 and conv["owner_id"] == ana.user_id and conv["created_by"] == "ana"
    with acting_as(ana):
        assert list_unfinished_drafts(engine) == []


def test_cut_stream_resumes_without_repeating_the_saved_prefix(engine, sandbox):
    """A draft whose stream is cut keeps its text; resume continues it by prefill and never repeats it."""
    override_settings(retry_max_attempts=1, autosave_interval_s=3600)
    sandbox.configure(rate_stream_cut=1.0)
    draft = start_draft(engine, PARAMS)
    with pytest.raises(AppError):
        draft.run()
    saved = _saved(engine, draft.id)
    prefix = saved["partial_text"].rstrip()
    assert saved["status"] == "failed" and prefix.startswith("User:") and len(prefix) > 40
    assert [d["id"] for d in list_unfinished_drafts(engine)] == [draft.id]

    sandbox.configure(rate_stream_cut=0.0)
    streamed: list[str] = []
    result = resume_draft(engine, draft.id, on_delta=streamed.append)
    text = result.raw_text
    continuation = text[len(prefix):]
    first_block = prefix.split("\n\n")[0]
    assert text.startswith(prefix) and continuation.strip()
    assert text.count(first_block) == 1 and not continuation.lstrip().startswith(first_block)
    assert first_block not in "".join(streamed)  # only the continuation was streamed
    assert len(result.conversation.turns) == 6
    assert result.conversation.turns[0].content in first_block
    assert _saved(engine, draft.id)["status"] == "completed"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversations)
                            .where(conversations.c.draft_id == draft.id)).scalar_one() == 1


def test_a_cancelled_generation_stops_at_its_next_piece_and_its_draft_stays_resumable(engine, sandbox):
    """The page's cancel ends the stream at the next piece: no conversation is written, the draft stays unfinished."""
    from core.ui.generation_job import GenerationJob

    draft = start_draft(engine, PARAMS)
    job = GenerationJob(draft)
    job.cancel()  # the page has gone before the first piece arrives
    job.start().join(30)
    assert job.done and job.cancelled and job.error is None and job.result is None
    assert _saved(engine, draft.id)["status"] == "in_progress"
    assert [d["id"] for d in list_unfinished_drafts(engine)] == [draft.id]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one() == 0
    assert sandbox.stats()["messages_requests"] == 1  # a cancel is never retried


def test_a_draft_being_written_has_one_job_that_a_reloaded_page_takes_over(engine, sandbox):
    """Resuming a draft that is still being written joins its job; its user's new session finds it; done, it is gone."""
    from core.ui.generation_job import job_for, running_job_of

    sandbox.configure(latency_ms=300)
    ana, ben = person(engine, "ana@example.com"), person(engine, "ben@example.com")
    with acting_as(ana):
        draft = start_draft(engine, PARAMS)
        job = job_for(draft)
        again = job_for(DraftSession.load(engine, draft.id))  # "Resume" on the same draft from another tab
    assert again is job
    assert running_job_of(ana.user_id) is job and running_job_of(ben.user_id) is None
    job.join(60)
    assert job.done and job.result is not None
    assert running_job_of(ana.user_id) is None
    assert sandbox.stats()["messages_requests"] == 1  # one writer, one call
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one() == 1


def test_a_completed_draft_cannot_run_again(engine, sandbox):
    """Running a finished draft again is refused; it does not write a second conversation."""
    draft = start_draft(engine, PARAMS)
    draft.run()
    with pytest.raises(AppError):
        DraftSession.load(engine, draft.id).run()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one() == 1
        assert conn.execute(sa.select(conversation_drafts.c.status)).scalar_one() == "completed"


def test_a_store_outage_during_autosave_does_not_stop_the_stream(engine, tmp_path):
    """If the store cannot be written, streaming goes on with the text in memory; the next save catches up."""
    from core.store import create_store_engine

    override_settings(autosave_interval_s=3600, db_retry_max_attempts=1)
    draft = start_draft(engine, PARAMS)
    draft.engine = create_store_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # no tables: every write fails
    try:
        assert draft.on_delta("User: one\n\nAssistant: two") is False  # the save failed, no exception
        assert draft.save_error and draft.partial_text.endswith("two")
    finally:
        draft.engine.dispose()
        draft.engine = engine
        reset_breakers()
    assert draft.on_delta("\n\nUser: three") is True and draft.save_error is None
    assert _saved(engine, draft.id)["partial_text"].endswith("User: three")
