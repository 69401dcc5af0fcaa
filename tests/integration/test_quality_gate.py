"""The quality gate where conversations are committed, on both engines: batch items, single saves, recheck."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from batch_support import UNLIMITED_RATE
from people import person

from core.auth import acting_as
from core.auth.actor import system_actor
from core.batches import checkpoints
from core.batches.leases import claim_batch, claim_items
from core.batches.service import create_batch, get_batch_status
from core.batches.worker import BatchWorker
from core.config import override_settings
from core.drafts import start_draft
from core.generation import Conversation, GenerationParams, GenerationResult
from core.generation.models import Turn
from core.llm.client import LLMResult, Usage
from core.quality import CHECK_NAMES, StoreIndex, assess, recheck, reset_shared_indexes
from core.store.schema import batch_items, batch_jobs, conversations, review_decisions
from core.store.tx import write_tx

SANDBOX = {"seed": 5, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = {**UNLIMITED_RATE, "STUDIO_WORKER_POLL_INTERVAL_S": "0.1", "STUDIO_HEARTBEAT_INTERVAL_S": "0.3"}

ROW = {"persona": "a retired teacher who loves gardening", "emotion": "frustrated", "topic": "my wifi keeps dropping"}
OTHER = {"persona": "a night-shift nurse", "emotion": "anxious", "topic": "a laptop that will not update"}


def _run_worker(engine) -> BatchWorker:
    reset_shared_indexes()  # this test's database, read afresh
    worker = BatchWorker(engine, concurrency=2)
    assert asyncio.run(worker.run(once=True)) == 0
    return worker


def _rows(engine, batch_id: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(conversations).where(conversations.c.batch_id == batch_id)
                                              .order_by(conversations.c.item_index)).mappings()]


def test_a_sandbox_batch_stores_checks_score_routing_and_flags_its_exact_duplicate(engine, sandbox):
    """Each conversation carries its checks, score and parts, hash and signature; the repeated item is a duplicate."""
    # the sandbox answers the same request with the same text: item 2 repeats item 0
    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW, OTHER, ROW], turns=6, concurrency=1)
    _run_worker(engine)
    assert get_batch_status(engine, bid)["state"] == "completed"
    rows = _rows(engine, bid)
    assert len(rows) == 3
    for row in rows:
        assert [c["name"] for c in row["checks"]] == list(CHECK_NAMES)
        assert row["quality_score"] == sum(row["score_parts"].values())
        assert len(row["content_hash"]) == 64 and len(row["minhash"]) == 512
    first, other, repeat = rows
    assert first["review_status"] == other["review_status"] == "accepted"
    assert first["duplicate_of"] is None and other["duplicate_of"] is None
    assert (repeat["duplicate_of"], repeat["duplicate_kind"], repeat["duplicate_similarity"]) == (
        first["id"], "exact", 1.0)
    assert repeat["review_status"] == "needs_review"
    assert "wifi" in repeat["duplicate_passage"]


def test_an_item_routed_to_regenerate_is_generated_again_then_waits_for_review(engine, sandbox):
    """Below the review score the item runs again up to the limit; one conversation stays, usage counts every run."""
    # the sandbox never writes "calm" (it shows curiosity instead): 95 points, under a review score of 100
    override_settings(quality_accept_score=100, quality_review_score=100, quality_max_regenerations=2)
    bid = create_batch(engine, template="tech_troubleshooting", rows=[{**ROW, "emotion": "calm"}, ROW], turns=4,
                       concurrency=1)
    worker = _run_worker(engine)
    assert get_batch_status(engine, bid)["state"] == "completed"
    assert (worker.stats.replies, worker.stats.items_done) == (4, 2)  # a regenerated reply is not an item done
    rows = _rows(engine, bid)
    assert [r["item_index"] for r in rows] == [0, 1]  # one row per item, whatever was regenerated
    calm, plain = rows
    assert calm["review_status"] == "needs_review" and calm["quality_score"] == 95
    assert plain["review_status"] == "accepted" and plain["quality_score"] == 100
    with engine.connect() as conn:
        regenerations = dict(conn.execute(sa.select(batch_items.c.item_index, batch_items.c.regenerations)
                                          .where(batch_items.c.batch_id == bid)).all())
        spent = conn.execute(sa.select(batch_jobs.c.output_tokens).where(batch_jobs.c.id == bid)).scalar_one()
    assert regenerations == {0: 2, 1: 0}
    # the deterministic sandbox wrote the same reply three times for item 0: each run was paid for once
    assert spent == 3 * calm["output_tokens"] + plain["output_tokens"]


def _result(turns: list[tuple[str, str]], params: GenerationParams) -> GenerationResult:
    usage = Usage(input_tokens=100, output_tokens=50)
    llm = LLMResult(text="", usage=usage, cost_usd=0.01, request_id="req_1", model="claude-sonnet-5-5",
                    stop_reason="end_turn", attempts=1)
    conversation = Conversation("system", [Turn(r, c) for r, c in turns])  # type: ignore[arg-type]
    return GenerationResult(conversation, llm, params, "", usage, 0.01)


PARAMS = GenerationParams("tech_troubleshooting", ROW["persona"], ROW["emotion"], ROW["topic"], 2)
PLACEHOLDER = [("user", "I am {persona} and my wifi keeps dropping, I'm frustrated."),
               ("assistant", "Restart the router, then check the cable behind the desk.")]


def test_a_regenerate_commit_replayed_after_a_lost_acknowledgement_counts_once(engine, monkeypatch):
    """A regenerate commit that ran twice (its COMMIT landed, its ack was lost) requeues once and adds usage once."""
    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW], turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, bid, "w1", 1)

    def run_twice(fn):
        fn()
        return fn()

    monkeypatch.setattr(checkpoints, "run_db", run_twice)
    assert checkpoints.commit_item(engine, item, _result(PLACEHOLDER, PARAMS)) is False
    with engine.connect() as conn:
        status, regenerations = conn.execute(sa.select(batch_items.c.status, batch_items.c.regenerations)).one()
        tokens = conn.execute(sa.select(batch_jobs.c.output_tokens)).scalar_one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one()
    assert (status, regenerations, tokens, rows) == ("pending", 1, 50, 0)


def test_out_of_regenerations_a_failed_hard_check_is_stored_for_review(engine):
    """At the regeneration limit the conversation is saved as needs_review, its failed hard check named."""
    override_settings(quality_max_regenerations=0)
    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW], turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, bid, "w1", 1)
    assert checkpoints.commit_item(engine, item, _result(PLACEHOLDER, PARAMS)) is True
    [row] = _rows(engine, bid)
    failed = {c["name"]: c for c in row["checks"] if not c["passed"]}
    assert row["review_status"] == "needs_review"
    assert set(failed) == {"no_placeholder", "persona_present"}  # the persona never got its words
    assert failed["no_placeholder"]["hard"] is True and "{persona}" in failed["no_placeholder"]["detail"]


def test_a_single_generation_is_checked_and_compared_with_the_accepted_set(engine, sandbox):
    """A finished draft is saved with its score; the same brief again is an exact duplicate of the accepted one."""
    reset_shared_indexes()
    ana = person(engine, "ana@example.com")
    params = GenerationParams("tech_troubleshooting", ROW["persona"], ROW["emotion"], ROW["topic"], 6)
    with acting_as(ana):
        first = start_draft(engine, params)
        first.run()
        second = start_draft(engine, params)
        second.run()
    with engine.connect() as conn:
        got = {r.id: r for r in conn.execute(sa.select(conversations))}
    one, two = got[first.conversation_id], got[second.conversation_id]
    assert one.review_status == "accepted" and one.quality_score == 100
    assert (two.duplicate_of, two.duplicate_kind, two.review_status) == (one.id, "exact", "needs_review")


def test_recheck_fills_rows_saved_before_the_gate_and_keeps_a_reviewers_decision(engine, sandbox):
    """Rows with no score get checks, score and status; one a reviewer rejected keeps its status."""
    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW, OTHER], turns=6, concurrency=1)
    _run_worker(engine)
    first, other = _rows(engine, bid)
    with write_tx(engine) as conn:  # as rows from before migration 0017 look
        conn.execute(conversations.update().values(quality_score=None, checks=None, score_parts=None,
                                                   content_hash=None, minhash=None, review_status="needs_review"))
        conn.execute(conversations.update().where(conversations.c.id == other["id"]).values(
            review_status="rejected"))
    reset_shared_indexes()
    assert recheck(engine, batch_id=bid) == 2
    assert recheck(engine, batch_id=bid) == 0  # nothing left unchecked
    after = {r["id"]: r for r in _rows(engine, bid)}
    assert after[first["id"]]["quality_score"] == first["quality_score"]
    assert after[first["id"]]["review_status"] == "accepted"
    assert after[other["id"]]["review_status"] == "rejected" and after[other["id"]]["checks"]


def test_the_process_index_catches_up_with_other_processes_commits_and_decisions(engine):
    """Rows another process saved, and a reviewer's accept, reach an index already loaded at the next catch-up."""
    override_settings(quality_index_refresh_s=0)
    index = StoreIndex(engine)  # this process's; commit_item below uses the shared one, as another process would
    assert len(index.prepare()) == 0
    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW, OTHER], turns=2)
    assert claim_batch(engine, "w1") is not None
    first, second = claim_items(engine, bid, "w1", 2)
    good = [("user", "I'm frustrated, my wifi keeps dropping. I'm a retired teacher who loves gardening."),
            ("assistant", "Restart the router first, then check whether the phone drops the connection too.")]
    off_brief = [("user", "Quick one: my printer prints blank pages since this morning, any idea why?"),
                 ("assistant", "Check the ink cartridges are seated and run the nozzle cleaning from the menu.")]
    assert checkpoints.commit_item(engine, first, _result(good, PARAMS))
    override_settings(quality_accept_score=100)  # the off-brief one scores 85: it waits for review
    assert checkpoints.commit_item(engine, second, _result(off_brief, PARAMS))
    good_id, waiting_id = (r["id"] for r in _rows(engine, bid))

    def sig(turns):
        return assess([{"role": r, "content": c} for r, c in turns], {}).signature

    caught = index.prepare()
    assert caught.nearest(sig(good)).conversation_id == good_id
    assert caught.nearest(sig(off_brief)) is None  # needs review, in a batch this index does not hold
    with write_tx(engine, actor=system_actor()) as conn:  # a reviewer accepts it
        conn.execute(conversations.update().where(conversations.c.id == waiting_id).values(review_status="accepted"))
        conn.execute(review_decisions.insert().values(conversation_id=waiting_id, decision="accepted"))
    assert index.prepare().nearest(sig(off_brief)).conversation_id == waiting_id


def test_a_template_versions_own_scores_route_its_conversations(engine):
    """A version that accepts only at 100 sends a 95 to review, where the settings (85) would accept it."""
    import dataclasses

    from core.templates.builtin import BUILTINS
    from core.templates.store import save_template

    strict = dataclasses.replace(BUILTINS["tech_troubleshooting"].content, quality_accept=100, quality_review=50)
    save_template(engine, "strict_support", strict)
    bid = create_batch(engine, template="strict_support", rows=[{**ROW, "emotion": "calm"}], turns=2)
    assert claim_batch(engine, "w1") is not None
    [item] = claim_items(engine, bid, "w1", 1)
    calm = [("user", "My wifi keeps dropping and I'm a retired teacher who loves gardening."),
            ("assistant", "Restart the router first, then check whether the phone drops the connection too.")]
    assert checkpoints.commit_item(engine, item, _result(calm, PARAMS)) is True
    [row] = _rows(engine, bid)
    assert (row["quality_score"], row["review_status"]) == (95, "needs_review")


GOOD = [("user", "I'm a retired teacher who loves gardening and I'm frustrated: my wifi keeps dropping."),
        ("assistant", "Let's find out why. Does it drop in every room, or only far from the router?")]


def test_two_commits_of_the_same_text_at_once_flag_the_second_as_its_exact_duplicate(engine, monkeypatch):
    """Two workers commit the same text in parallel: the second waits for the first and is flagged its duplicate.

    The first commit is held open after its duplicate lookup until the second has started its own:
    on Postgres, without the hash lock, both looked before either committed and neither was flagged.
    """
    import threading

    bid = create_batch(engine, template="tech_troubleshooting", rows=[ROW, ROW], turns=2)
    assert claim_batch(engine, "w1") is not None
    first, second = claim_items(engine, bid, "w1", 2)
    original = checkpoints.find_duplicate
    second_started = threading.Event()

    def lookup(conn, assessment, **kwargs):
        if threading.current_thread().name == "second":
            second_started.set()
            return original(conn, assessment, **kwargs)
        found = original(conn, assessment, **kwargs)
        # Postgres: the second is then inside its lookup (waiting, with the lock). SQLite: the second
        # cannot begin its write transaction before this one ends, so it never starts meanwhile.
        if second_started.wait(5):
            threading.Event().wait(0.5)
        return found

    monkeypatch.setattr(checkpoints, "find_duplicate", lookup)
    saved: dict[str, bool] = {}
    threads = [threading.Thread(target=lambda it=it, n=name: saved.__setitem__(
        n, checkpoints.commit_item(engine, it, _result(GOOD, PARAMS))), name=name)
        for name, it in (("first", first), ("second", second))]
    threads[0].start()
    threading.Event().wait(0.2)  # the first is inside its transaction before the second begins
    threads[1].start()
    for t in threads:
        t.join(60)
    assert saved == {"first": True, "second": True}
    by_index = {r["item_index"]: r for r in _rows(engine, bid)}
    assert by_index[first.item_index]["duplicate_of"] is None
    assert by_index[second.item_index]["duplicate_of"] == by_index[first.item_index]["id"]
