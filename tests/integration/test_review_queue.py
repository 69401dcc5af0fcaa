"""The review queue on both engines: who sees it, its order and filters, and decisions with their audit rows."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from audit_support import audit_rows, fail_after
from people import cast
from review_support import batch, decisions, interrupt_a_bulk_accept, reviewed, stored

from core import review
from core.auth import acting_as
from core.auth.audit import AuditAction
from core.config import override_settings
from core.errors import DatabaseError, ErrorCode, NotFoundError, ValidationError


def _ids(engine, flt: review.ReviewFilter | None = None, **kw) -> list[str]:
    return [r["id"] for r in review.review_page(engine, flt, page_size=100, **kw).rows]


def test_the_queue_is_the_conversations_needing_review_oldest_first(engine):
    """Accepted and rejected ones stay out; the oldest comes first, whoever made it."""
    people = cast(engine)
    newer = stored(engine, people.a.user_id, 2, start=10)
    older = stored(engine, people.b.user_id, 1, start=0)
    stored(engine, people.a.user_id, 1, status="accepted", start=5)
    stored(engine, people.a.user_id, 1, status="rejected", start=6)
    with acting_as(people.reviewer):
        assert _ids(engine) == older + newer
        assert review.review_page(engine, page_size=2, page=2).rows[0]["id"] == newer[1]
        assert review.review_page(engine).total == 3
        assert len(_ids(engine, review.ReviewFilter(status="all"))) == 5


def test_an_analyst_has_no_queue_and_their_decisions_answer_not_found(engine):
    """Even their own conversation: an analyst may not review, so it answers as an unknown id."""
    people = cast(engine)
    mine = stored(engine, people.a.user_id)[0]
    with acting_as(people.a):
        assert review.review_page(engine).total == 0
        with pytest.raises(NotFoundError) as refused:
            review.decide(engine, [mine], "accepted")
        assert refused.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(NotFoundError):
            review.review_item(engine, mine)
        with pytest.raises(NotFoundError):
            review.edit_turn(engine, mine, 0, "changed")
        assert review.count_to_decide(engine, review.ReviewFilter()) == 0
        assert review.bulk_decide(engine, review.ReviewFilter(), "accepted").decided == 0  # nothing they may review
    assert reviewed(engine, mine)["review_status"] == "needs_review"
    assert decisions(engine) == []


def test_the_filters_narrow_by_batch_template_failed_check_and_score(engine):
    """Each filter keeps exactly the conversations it names; a failed check matches failures only."""
    people = cast(engine)
    bid = batch(engine, people.a.user_id)
    in_batch = stored(engine, people.a.user_id, 1, batch_id=bid, score=40, start=0)
    other_template = stored(engine, people.a.user_id, 1, template="travel_booking", score=70, start=1)
    failing = stored(engine, people.a.user_id, 1, failed=("meta_text", "repetition"), score=55, start=2)
    passing = stored(engine, people.a.user_id, 1, score=90, start=3)  # meta_text is not among its failures
    with acting_as(people.admin):
        assert _ids(engine, review.ReviewFilter(batch_id=bid)) == in_batch
        assert _ids(engine, review.ReviewFilter(template="travel_booking")) == other_template
        assert _ids(engine, review.ReviewFilter(failed_check="meta_text")) == failing
        assert _ids(engine, review.ReviewFilter(failed_check="roles_alternate")) == []  # it passed everywhere
        for hostile in ('meta_text"}] or 1=1 --', "meta%", "meta_tex_", "' OR '1'='1"):  # literal names, no syntax
            assert _ids(engine, review.ReviewFilter(failed_check=hostile)) == []
        assert _ids(engine, review.ReviewFilter(min_score=55, max_score=70)) == other_template + failing
        assert _ids(engine, review.ReviewFilter(min_score=90)) == passing
        assert review.review_page(engine, review.ReviewFilter(failed_check="meta_text")).rows[0]["failed_checks"] == [
            "meta_text", "repetition"]


def test_a_filter_out_of_bounds_is_refused_by_name():
    """A score past 100, a range upside down or an unknown status is a validation error naming the field."""
    for bad, field in (({"min_score": 101}, "min_score"), ({"min_score": 80, "max_score": 20}, "min_score"),
                       ({"status": "maybe"}, "status")):
        with pytest.raises(ValidationError) as refused:
            review.ReviewFilter(**bad)
        assert refused.value.field == field


def test_accepting_records_the_reviewer_the_decision_and_one_audit_row(engine):
    """accept: status, reviewer, time and note on the conversation, a decision row and an audit row."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id)[0]
    with acting_as(people.reviewer):
        assert review.decide(engine, [cid], "accepted", note="  fine  ") == 1
    row = reviewed(engine, cid)
    assert (row["review_status"], row["reviewed_by"], row["review_note"]) == ("accepted", people.reviewer.user_id,
                                                                              "fine")
    assert row["reviewed_at"] is not None
    [d] = decisions(engine, cid)
    assert (d["decision"], d["reviewer_id"], d["note"], d["operation_id"]) == ("accepted", people.reviewer.user_id,
                                                                               "fine", None)
    [a] = audit_rows(engine, AuditAction.REVIEW_DECISION)
    assert a["actor_id"] == people.reviewer.user_id and a["target_id"] == cid
    assert a["detail"]["decision"] == "accepted" and a["detail"]["note"] == "fine"


def test_a_decision_whose_transaction_fails_leaves_nothing(engine, monkeypatch):
    """The audit row written and then a failure: no status change, no decision row, no audit row."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id)[0]
    monkeypatch.setattr("core.review._decide.audit", fail_after(review._decide.audit))
    with acting_as(people.reviewer), pytest.raises(Exception, match="dies before the commit"):
        review.decide(engine, [cid], "rejected")
    assert reviewed(engine, cid)["review_status"] == "needs_review"
    assert decisions(engine) == [] and audit_rows(engine, AuditAction.REVIEW_DECISION) == []


def test_one_unknown_id_among_several_decides_none_of_them(engine):
    """decide([known, unknown]) is refused whole: the known one still needs review."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id)[0]
    with acting_as(people.reviewer), pytest.raises(NotFoundError, match="no conversation"):
        review.decide(engine, [cid, "00000000-0000-0000-0000-000000000000"], "accepted")
    assert reviewed(engine, cid)["review_status"] == "needs_review"


def test_editing_a_turn_keeps_the_turns_as_generated_from_the_first_edit(engine):
    """Two edits: turns has the second text, original_turns the generated text; one decision row each."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id)[0]
    with acting_as(people.reviewer):
        review.edit_turn(engine, cid, 1, "Hello there.", note="friendlier")
        review.edit_turn(engine, cid, 1, "Hello there, key sk-ant-api03-" + "x" * 40)
        with pytest.raises(ValidationError, match="no turn 3"):
            review.edit_turn(engine, cid, 2, "x")
        with pytest.raises(ValidationError, match="empty"):
            review.edit_turn(engine, cid, 0, "   ")
    row = reviewed(engine, cid)
    assert row["original_turns"][1]["content"] == "Hello"
    assert row["turns"][1]["content"].startswith("Hello there, key ") and "x" * 40 not in row["turns"][1]["content"]
    assert row["review_status"] == "needs_review" and row["review_note"] == "friendlier"
    assert [d["decision"] for d in decisions(engine, cid)] == ["edited", "edited"]
    assert len(audit_rows(engine, AuditAction.REVIEW_DECISION)) == 2


def test_an_edit_takes_the_checks_and_score_again_on_the_edited_turns(engine):
    """An edit that leaves a placeholder unfilled fails that check and lowers the score; the state stays."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id, score=100)[0]
    with acting_as(people.reviewer):
        review.edit_turn(engine, cid, 1, "Hello, {persona}, how are the night shifts?")
    row = reviewed(engine, cid)
    failed = {c["name"] for c in row["checks"] if not c["passed"]}
    assert "no_placeholder" in failed and row["quality_score"] < 100
    assert row["content_hash"] and row["minhash"] and row["review_status"] == "needs_review"


def test_a_bulk_accept_decides_the_filtered_queue_once_under_one_operation(engine):
    """Bulk accept of a batch: every conversation that needed review, one operation id, one audit row."""
    people = cast(engine)
    bid = batch(engine, people.a.user_id)
    queued = stored(engine, people.a.user_id, 7, batch_id=bid)
    already = stored(engine, people.a.user_id, 1, batch_id=bid, status="rejected", start=20)
    elsewhere = stored(engine, people.a.user_id, 2, start=30)
    seen: list[tuple[int, int]] = []
    with acting_as(people.reviewer):
        assert review.count_to_decide(engine, review.ReviewFilter(batch_id=bid)) == 7
        override_settings(review_bulk_chunk_rows=3)
        result = review.bulk_decide(engine, review.ReviewFilter(batch_id=bid), "accepted", note="batch ok",
                                    progress=lambda done, total: seen.append((done, total)))
    assert result.decided == 7 and not result.resumed
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert {reviewed(engine, c)["review_status"] for c in queued} == {"accepted"}
    assert reviewed(engine, already[0])["review_status"] == "rejected"
    assert {reviewed(engine, c)["review_status"] for c in elsewhere} == {"needs_review"}
    rows = decisions(engine)
    assert sorted(d["conversation_id"] for d in rows) == sorted(queued)
    assert {d["operation_id"] for d in rows} == {result.operation_id}
    [a] = audit_rows(engine, AuditAction.REVIEW_DECISION)
    assert a["detail"]["count"] == 7 and a["target_id"] == result.operation_id


def test_a_bulk_chunk_whose_commit_acknowledgement_was_lost_is_counted_once(engine, monkeypatch):
    """The 2nd chunk commits, then the connection drops: the retry starts after it, and the count is exact."""
    people = cast(engine)
    queued = stored(engine, people.a.user_id, 7)
    override_settings(review_bulk_chunk_rows=3)
    real_write_tx, calls = review._bulk.write_tx, 0

    @contextmanager
    def losing_the_second_acknowledgement(*args, **kwargs):
        nonlocal calls
        calls += 1
        with real_write_tx(*args, **kwargs) as conn:
            yield conn
        if calls == 2:
            raise DatabaseError("server closed the connection unexpectedly", code="db_connection")

    monkeypatch.setattr("core.review._bulk.write_tx", losing_the_second_acknowledgement)
    with acting_as(people.reviewer):
        result = review.bulk_decide(engine, review.ReviewFilter(), "rejected")
    assert calls == 3  # the second chunk, retried, finds only the last conversation left
    assert result.decided == 7 == len(decisions(engine))
    assert {reviewed(engine, c)["review_status"] for c in queued} == {"rejected"}


def test_an_interrupted_bulk_decision_is_listed_for_its_person_and_resumes_with_its_first_note(engine, monkeypatch):
    """Stopped after one chunk: listed (3 done) for its reviewer only; asked again, it decides the rest once."""
    people = cast(engine)
    queued = stored(engine, people.a.user_id, 7)
    flt = review.ReviewFilter(max_score=80)
    interrupt_a_bulk_accept(engine, monkeypatch, people.reviewer, flt)
    with acting_as(people.reviewer):
        [stopped] = review.interrupted_bulk(engine)
    assert (stopped.decision, stopped.filter, stopped.done, stopped.note) == ("accepted", flt, 3, "first note")
    with acting_as(people.admin):  # an admin reaches every checkpoint; an analyst none
        assert len(review.interrupted_bulk(engine)) == 1
    with acting_as(people.a):
        assert review.interrupted_bulk(engine) == []
    with acting_as(people.reviewer):
        result = review.bulk_decide(engine, stopped.filter, "accepted", note="another note")
        assert review.interrupted_bulk(engine) == []
    assert result.resumed and result.decided == 7 == len(decisions(engine))
    assert {reviewed(engine, c)["review_note"] for c in queued} == {"first note"}
