"""Batch service on both engines: creation in one transaction, refusals that write nothing, state changes."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE
from people import person

from core.auth import Role, acting_as
from core.batches.csv_import import parse_csv
from core.batches.service import (
    batch_names,
    batches_page,
    cancel_batch,
    create_batch,
    estimate,
    failed_items,
    get_batch_status,
    list_batches,
    pause_batch,
    resolve_batch_id,
    resume_batch,
    resume_history,
    resume_history_page,
)
from core.batches.worker import BatchWorker
from core.errors import ValidationError
from core.store.schema import batch_items, batch_jobs, batch_resumes, recovery_checkpoints
from core.store.tx import write_tx

SANDBOX = {"seed": 5, "latency_ms": 0, "tokens_per_s": 200_000.0}
SANDBOX_ENV = UNLIMITED_RATE


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _nothing_written(engine) -> bool:
    return all(_count(engine, t) == 0 for t in (batch_jobs, batch_items, recovery_checkpoints))


def test_grid_batch_is_created_whole(engine):
    """A grid batch writes its row and one item per count (cycling the grid); the items are its only checkpoint."""
    ana = person(engine, "ana@example.com")
    with acting_as(ana):
        bid = create_batch(engine, template="tutoring", count=7, personas=["p1", "p2"], emotions=["e1"],
                           topics=["t1", "t2", "t3"])
    with engine.connect() as conn:
        items = conn.execute(sa.select(batch_items.c.item_index, batch_items.c.params)
                             .where(batch_items.c.batch_id == bid).order_by(batch_items.c.item_index)).all()
        checkpoint_rows = conn.execute(sa.select(sa.func.count()).select_from(recovery_checkpoints)).scalar_one()
    assert [i.item_index for i in items] == list(range(7))
    combos = [(i.params["persona"], i.params["topic"]) for i in items]
    assert combos[:6] == [("p1", "t1"), ("p1", "t2"), ("p1", "t3"), ("p2", "t1"), ("p2", "t2"), ("p2", "t3")]
    assert combos[6] == ("p1", "t1")
    assert checkpoint_rows == 0  # no counter copy to drift from the items
    with acting_as(ana):
        st = get_batch_status(engine, bid)
    assert st["state"] == "queued" and st["pending"] == 7 and st["total"] == 7
    assert (st["owner_id"], st["owner"], st["created_by"]) == (ana.user_id, "ana", "ana")


def test_csv_rows_become_items(engine):
    """Each parsed CSV row becomes one item, its own turns kept."""
    rows = parse_csv(b"persona,emotion,topic,turns\na,b,c,4\nd,e,f,\n")
    bid = create_batch(engine, template="tutoring", rows=rows, turns=6)
    with engine.connect() as conn:
        params = [r[0] for r in conn.execute(sa.select(batch_items.c.params).where(
            batch_items.c.batch_id == bid).order_by(batch_items.c.item_index))]
    assert [(p["persona"], p["turns"]) for p in params] == [("a", 4), ("d", 6)]


@pytest.mark.parametrize("count, needle", [(0, "got 0"), (10_000_000, "10,000,000"), (-3, "got -3")])
def test_bad_count_is_refused_and_nothing_written(engine, count, needle):
    """A count of 0, 10,000,000 or below zero is refused with the allowed range; no row is written."""
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", count=count)
    assert exc.value.field == "count" and needle in exc.value.user_message and "100,000" in exc.value.user_message
    assert _nothing_written(engine)


def test_unknown_template_is_refused_and_nothing_written(engine):
    """An unknown template name is refused naming the choices; no row is written."""
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="no_such_template", count=5)
    assert exc.value.field == "template" and "tutoring" in exc.value.user_message
    assert _nothing_written(engine)


@pytest.mark.parametrize("data, code", [
    (b"persona,topic\nx,y\n", "missing_columns"),
    (b"persona,emotion,topic\n\xff\xfe,b,c\n", "invalid_encoding"),
    (None, "upload_too_large"),
])
def test_bad_csv_is_refused_and_nothing_written(engine, tmp_path, data, code):
    """Missing columns, invalid UTF-8 and a 100 MB file are refused by name; no row is written."""
    if data is None:
        path = tmp_path / "huge.csv"
        with path.open("wb") as fh:
            fh.truncate(100 * 1024 * 1024)
        source = path
    else:
        source = data
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", rows=parse_csv(source))
    assert exc.value.code == code
    assert _nothing_written(engine)


def test_a_bad_row_refuses_the_whole_batch(engine):
    """One row with an unusable value refuses the batch, naming the row; nothing is written."""
    rows = [{"persona": "a", "emotion": "b", "topic": "c"}, {"persona": "a", "emotion": "b", "topic": "c",
                                                             "turns": 999}]
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", rows=rows)
    assert "Row 2" in exc.value.user_message
    assert _nothing_written(engine)


def _set_items(engine, bid, status, indexes):
    with write_tx(engine) as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid,
                                                batch_items.c.item_index.in_(indexes))
                     .values(status=status, attempts=3 if status == "failed" else 0,
                             last_error="boom" if status == "failed" else None, last_error_code="x"))


def _set_batch(engine, bid, **values):
    with write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(**values))


def test_completed_batch_cannot_be_resumed(engine):
    """Resuming a completed batch is refused in plain words."""
    bid = create_batch(engine, template="tutoring", count=2)
    _set_items(engine, bid, "done", [0, 1])
    _set_batch(engine, bid, status="completed")
    with pytest.raises(ValidationError) as exc:
        resume_batch(engine, bid)
    assert "finished" in exc.value.user_message
    assert _count(engine, batch_resumes) == 0


def test_failed_only_requeues_only_failed_items_and_is_audited(engine):
    """--failed-only resets failed items (attempts too), keeps done ones, and records who resumed."""
    bid = create_batch(engine, template="tutoring", count=5)
    _set_items(engine, bid, "done", [0, 1, 2])
    _set_items(engine, bid, "failed", [3, 4])
    _set_batch(engine, bid, status="failed", status_reason="2 failed")
    assert [i["item_index"] for i in failed_items(engine, bid)] == [3, 4]
    bo = person(engine, "bo@example.com", Role.ADMIN)
    with acting_as(bo):
        assert resume_batch(engine, bid, failed_only=True) == 2
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["pending"], st["failed"]) == ("queued", 3, 2, 0)
    with engine.connect() as conn:
        attempts = conn.execute(sa.select(batch_items.c.attempts).where(
            batch_items.c.batch_id == bid, batch_items.c.item_index == 3)).scalar_one()
    assert attempts == 0
    (audit,) = resume_history(engine, bid)
    assert (audit["resumed_by"], audit["resumed_by_name"], audit["requeued_count"], audit["previous_status"],
            audit["failed_only"]) == (bo.user_id, "bo", 2, "failed", True)


def test_interrupted_batch_resume_requeues_running_items(engine):
    """A running batch whose lease expired is resumable; its running items go back to pending."""
    bid = create_batch(engine, template="tutoring", count=4)
    _set_items(engine, bid, "done", [0])
    _set_items(engine, bid, "running", [1])
    _set_batch(engine, bid, status="running", lease_owner="dead", lease_expires_at=None)
    assert get_batch_status(engine, bid)["interrupted"] is True
    assert resume_batch(engine, bid) == 3
    assert resume_history(engine, bid)[0]["previous_status"] == "interrupted"


def test_pause_then_cancel_keeps_finished_items(engine):
    """Pause then cancel: done items stay done, pending ones are skipped, and a cancelled batch cannot resume."""
    bid = create_batch(engine, template="tutoring", count=4)
    _set_items(engine, bid, "done", [0])
    with acting_as(person(engine, "cy@example.com", Role.ADMIN)):
        pause_batch(engine, bid)
    st = get_batch_status(engine, bid)
    assert st["state"] == "paused" and st["pause_kind"] == "user" and "cy" in st["status_reason"]
    assert cancel_batch(engine, bid) == 3
    st = get_batch_status(engine, bid)
    assert (st["state"], st["done"], st["skipped"]) == ("cancelled", 1, 3)
    with pytest.raises(ValidationError):
        resume_batch(engine, bid)
    with pytest.raises(ValidationError):
        pause_batch(engine, bid)


def test_list_and_unknown_batch(engine):
    """Batches list newest first; an unknown id is a ValidationError naming it."""
    a = create_batch(engine, template="tutoring", count=1)
    b = create_batch(engine, template="travel_booking", count=1)
    assert {r["id"] for r in list_batches(engine)} == {a, b}
    assert [r["id"] for r in list_batches(engine, status="queued", limit=1)][0] in (a, b)
    with pytest.raises(ValidationError) as exc:
        get_batch_status(engine, "nope")
    assert "nope" in exc.value.user_message


def test_batches_and_their_resumes_page_with_a_true_total(engine):
    """Five batches two a page: pages of 2, 2 and 1, newest first, 5 in all; three resumes page newest first too."""
    made = [create_batch(engine, template="tutoring", count=1) for _ in range(5)]
    pages = [batches_page(engine, page=p, page_size=2) for p in (1, 2, 3)]
    assert [(pg.total, pg.pages, len(pg.rows)) for pg in pages] == [(5, 3, 2), (5, 3, 2), (5, 3, 1)]
    assert [b["id"] for pg in pages for b in pg.rows] == [b["id"] for b in list_batches(engine)]
    assert {b["id"] for pg in pages for b in pg.rows} == set(made)
    assert batches_page(engine, status="failed").total == 0
    bid = made[0]
    for _ in range(3):
        _set_batch(engine, bid, status="paused")
        resume_batch(engine, bid)
    first, second = (resume_history_page(engine, bid, page=p, page_size=2) for p in (1, 2))
    assert (first.total, len(first.rows), len(second.rows)) == (3, 2, 1)
    assert [h["id"] for h in first.rows + second.rows] == [h["id"] for h in resume_history(engine, bid)][::-1]
    with pytest.raises(ValidationError) as exc:
        batches_page(engine, page=0)
    assert exc.value.field == "page"


def test_estimate_counts_calls_tokens_cost_and_time(monkeypatch):
    """The estimate scales with the count and takes the configured request rate for its time."""
    from core.config import override_settings

    override_settings(rate_limit_rpm=60, rate_limit_input_tpm=10**9, rate_limit_output_tpm=10**9)
    one, hundred = estimate("tutoring", 1), estimate("tutoring", 100)
    assert hundred["calls"] == 100 and hundred["tokens"] == 100 * one["tokens"]
    assert hundred["cost_usd"] > 0 and hundred["seconds"] == 100
    assert hundred["binding"]["bound_by"] == "requests"
    with pytest.raises(ValidationError):
        estimate("tutoring", 0)


def _run_batch(engine, **kwargs) -> dict:
    bid = create_batch(engine, template="customer_support", **kwargs)
    assert asyncio.run(BatchWorker(engine, concurrency=4).run(once=True)) == 0
    return get_batch_status(engine, bid)


def test_the_estimate_learns_the_templates_measured_tokens_and_lands_within_a_quarter(engine, sandbox):
    """Without history the estimate is the static one; after a batch of the template, the next batch's tokens and cost are within ±25 %."""
    assert estimate("customer_support", 10, engine=engine)["measured_from"] == 0
    _run_batch(engine, count=10, turns=4)
    est = estimate("customer_support", 20, turns=6, engine=engine)  # other turns than the history had
    assert est["measured_from"] == 10
    got = _run_batch(engine, count=20, turns=6)
    assert got["done"] == 20
    for key in ("input_tokens", "output_tokens", "cost_usd"):
        assert 0.75 <= est[key] / got[key] <= 1.25, (key, est[key], got[key])


def test_the_estimate_says_the_output_token_limit_binds_when_only_the_rpm_is_raised():
    """RPM 1,200 with the default 16,000 output tokens/min: 6-message conversations go at ~33/min, and the time says so."""
    from core.config import override_settings

    override_settings(rate_limit_rpm=1200)
    est = estimate("tutoring", 100)
    binding = est["binding"]
    assert binding["bound_by"] == "output_tokens" and binding["limit"] == 16_000
    assert binding["text"] == "bound by output tokens per minute (16,000): ~33 conversations/min"
    assert binding["allows"]["requests"] == 1200
    assert est["seconds"] == 180  # 100 conversations at 33.3 a minute, not 5 s at 1,200 requests a minute


def test_the_input_token_limit_can_bind_too():
    """A small input-token limit is named when it allows the fewest conversations a minute."""
    from core.config import override_settings

    override_settings(rate_limit_rpm=1200, rate_limit_input_tpm=1_000, rate_limit_output_tpm=10**9)
    assert estimate("tutoring", 10)["binding"]["bound_by"] == "input_tokens"


def test_a_batch_says_which_limit_binds_it_and_one_whose_template_is_gone_says_nothing():
    """batch_binding reads the batch's template, model and turns; an unknown template gives None, not an error."""
    from core.batches.service import batch_binding
    from core.config import override_settings

    override_settings(rate_limit_rpm=1200)
    status = {"template": "tutoring", "model": "claude-sonnet-5-5", "turns": 6, "total": 10}
    assert batch_binding(status)["bound_by"] == "output_tokens"
    assert batch_binding({**status, "turns": 2})["per_min"] == pytest.approx(100.0)  # 160 tokens a call
    assert batch_binding({**status, "template": "no_such_template"}) is None


def test_a_rate_limit_wait_shows_on_a_running_batch_and_clears(engine):
    """note_rate_limit_wait puts the wait on a running batch, never over another reason, and clearing removes it."""
    from core.batches.service import note_rate_limit_wait
    from core.store.schema import batch_jobs

    batch_id = create_batch(engine, template="tutoring", count=2)
    note_rate_limit_wait(engine, batch_id, 30.0)
    assert get_batch_status(engine, batch_id)["rate_limit_wait_s"] is None  # queued: not shown
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(status="running"))
    note_rate_limit_wait(engine, batch_id, 30.2)
    status = get_batch_status(engine, batch_id)
    assert status["rate_limit_wait_s"] == 31 and status["status_reason"] == "waiting for rate limit: 31 s"
    note_rate_limit_wait(engine, batch_id, None)
    assert get_batch_status(engine, batch_id)["status_reason"] is None
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(status_reason="something else"))
    note_rate_limit_wait(engine, batch_id, 12.0)
    note_rate_limit_wait(engine, batch_id, None)
    assert get_batch_status(engine, batch_id)["status_reason"] == "something else"


def test_running_batch_reports_throughput_and_eta(engine):
    """A running batch with 6 items done in the last minutes reports items/min and an ETA for the rest."""
    import uuid
    from datetime import timedelta

    from core.store.schema import conversations, utcnow

    bid = create_batch(engine, template="tutoring", count=10)
    now = utcnow()
    _set_batch(engine, bid, status="running", started_at=now - timedelta(minutes=2))
    _set_items(engine, bid, "done", list(range(6)))
    with write_tx(engine) as conn:
        conn.execute(conversations.insert(), [{
            "id": str(uuid.uuid4()), "batch_id": bid, "item_index": i, "template": "tutoring", "model": "m",
            "params": {}, "turns": [], "turn_count": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
            "status": "ok", "created_at": now - timedelta(seconds=10 * i), "error_count": 0,
            "is_recovering": False, "recovery_attempts": 0} for i in range(6)])
    st = get_batch_status(engine, bid)
    assert st["throughput_per_min"] == pytest.approx(3.0, rel=0.05)  # 6 in the 2 minutes since it started
    assert st["eta_s"] == pytest.approx(80, abs=3)  # 4 left at 3 a minute


def test_edited_template_texts_go_with_every_item_and_are_validated(engine):
    """An edited user template is stored on each item; one with an unknown placeholder is refused, nothing written."""
    bid = create_batch(engine, template="tutoring", count=2, user_template="Talk about {topic} in {turns} messages.")
    with engine.connect() as conn:
        templates = {r[0]["user_template"] for r in conn.execute(
            sa.select(batch_items.c.params).where(batch_items.c.batch_id == bid))}
    assert templates == {"Talk about {topic} in {turns} messages."}
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", count=2, user_template="Hello {nope}")
    assert "nope" in exc.value.user_message
    assert _count(engine, batch_jobs) == 1


@pytest.mark.parametrize("changes, field, needle", [
    ({"concurrency": 10**12}, "concurrency", "from 1 to 64"),
    ({"name": "n" * 100_000}, "name", "100,000 characters"),
])
def test_an_out_of_bounds_concurrency_or_name_is_refused_before_the_database(engine, changes, field, needle):
    """A concurrency past max_concurrency or a name past batch_name_max_chars is refused; nothing is written."""
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", count=2, **changes)
    assert exc.value.field == field and needle in exc.value.user_message
    assert _nothing_written(engine)


def test_a_csv_row_with_turns_0_is_refused_not_given_the_default(engine):
    """turns 0 in a CSV row is refused naming the row; it used to become the default of 6."""
    with pytest.raises(ValidationError) as exc:
        create_batch(engine, template="tutoring", rows=[{"persona": "a", "emotion": "b", "topic": "c", "turns": 0}])
    assert "Row 1" in exc.value.user_message and "got 0" in exc.value.user_message
    assert _nothing_written(engine)


@pytest.mark.parametrize("kwargs, field", [({"status": "bogus"}, "status"), ({"limit": -5}, "limit"),
                                           ({"limit": 10**20}, "limit")])
def test_listing_refuses_an_unknown_state_or_a_limit_out_of_bounds(engine, kwargs, field):
    """list_batches refuses a state that does not exist and a limit outside 1..list_max_rows."""
    with pytest.raises(ValidationError) as exc:
        list_batches(engine, **kwargs)
    assert exc.value.field == field


def test_an_unnamed_batch_is_named_by_template_count_and_time(engine):
    """No name given: the batch is called '<template title> x <count> · <month day hh:mm> UTC'; a given name is kept."""
    from core.generation import get_template

    bid = create_batch(engine, template="tutoring", count=12)
    named = create_batch(engine, template="tutoring", count=2, name="Algebra week")
    status = get_batch_status(engine, bid)
    assert status["name"].startswith(f"{get_template('tutoring').title} x 12 · ")
    assert status["name"].endswith(" UTC") and ":" in status["name"]
    assert {b["id"]: b["name"] for b in batch_names(engine)}[named] == "Algebra week"


def test_a_key_pasted_into_a_batch_name_is_never_stored(engine):
    """A name carrying an API key is stored (and so shown) with the key replaced; the rest of the name stays."""
    key = "sk-ant-api03-" + "Q7x_" * 12
    bid = create_batch(engine, template="tutoring", count=2, name=f"<b>night run</b> {key}")
    name = get_batch_status(engine, bid)["name"]
    assert key not in name and "sk-ant" not in name
    assert name.startswith("<b>night run</b> ") and "REDACTED" in name


def test_a_finished_batch_reports_its_duration_and_final_throughput(engine):
    """A completed batch: seconds from start to finish, and done items per minute over them; no live rate."""
    from datetime import timedelta

    from core.store.schema import utcnow

    bid = create_batch(engine, template="tutoring", count=4)
    end = utcnow()
    with write_tx(engine) as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid).values(status="done"))
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(
            status="completed", started_at=end - timedelta(minutes=2), finished_at=end))
    status = get_batch_status(engine, bid)
    assert status["duration_s"] == 120.0
    assert status["final_throughput_per_min"] == 2.0
    assert status["throughput_per_min"] == 0.0
    queued = get_batch_status(engine, create_batch(engine, template="tutoring", count=1))
    assert queued["duration_s"] is None and queued["final_throughput_per_min"] is None


def test_a_short_batch_id_resolves_to_the_full_one(engine):
    """The first 8 characters find the batch; an unknown or empty id is refused as unknown_batch."""
    bid = create_batch(engine, template="tutoring", count=1)
    assert resolve_batch_id(engine, bid[:8]) == bid
    assert resolve_batch_id(engine, f" {bid.upper()} ") == bid
    for text in ("zzzzzzzz", "", "%"):
        with pytest.raises(ValidationError) as exc:
            resolve_batch_id(engine, text)
        assert exc.value.code == "unknown_batch"


def test_an_id_prefix_two_batches_share_is_refused_as_ambiguous(engine, monkeypatch):
    """A prefix both batch ids start with names neither: it asks for more characters."""
    import uuid

    ids = iter([uuid.UUID("abcdef12-0000-4000-8000-000000000001"), uuid.UUID("abcdef12-0000-4000-8000-000000000002")])
    monkeypatch.setattr("core.batches.service.uuid.uuid4", lambda: next(ids))
    create_batch(engine, template="tutoring", count=1)
    create_batch(engine, template="tutoring", count=1)
    monkeypatch.undo()
    with pytest.raises(ValidationError) as exc:
        resolve_batch_id(engine, "abcdef12")
    assert exc.value.code == "ambiguous_batch"
    assert resolve_batch_id(engine, "abcdef12-0000-4000-8000-000000000002").endswith("2")
