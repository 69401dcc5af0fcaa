"""The Batches page in Message Batches mode: both modes' estimates side by side, mode and budget at launch,
and a batch's remote batches with their per-state counts in its detail."""

from __future__ import annotations

import sqlalchemy as sa

from core.batches import service
from core.store.schema import batch_jobs, message_batch_submissions, utcnow


def _shown(at) -> str:
    return "\n".join([m.label + " " + m.value for m in at.metric] + [c.value for c in at.caption])


def test_the_new_batch_form_launches_a_message_batches_batch_with_its_budget(open_page, engine):
    """Both modes' costs are shown; picking Message Batches and a budget launches a batch in that mode with it."""
    at = open_page("batches")
    labels = [m.label for m in at.metric]
    assert "Online (one call per conversation)" in labels and "Message Batches (half price)" in labels
    online, remote = (float(m.value.lstrip("$").replace(",", "")) for m in at.metric[:2])
    assert remote <= online
    at.radio(key="batches.grid_mode").set_value("message_batches").run()
    at.number_input(key="batches.grid_budget").set_value(3.0).run()
    at.button(key="batches.launch_grid").click().run()
    assert not at.exception, at.exception
    with engine.connect() as conn:
        row = conn.execute(sa.select(batch_jobs.c.mode, batch_jobs.c.budget_usd)
                           .order_by(batch_jobs.c.created_at.desc()).limit(1)).one()
    assert (row.mode, row.budget_usd) == ("message_batches", 3.0)


def test_the_new_batch_form_can_turn_the_judge_on_for_one_batch(open_page, engine):
    """Ticking the judge box launches a batch that asks for the LLM judge; left alone, it does not."""
    open_page("batches").button(key="batches.launch_grid").click().run()
    at = open_page("batches")
    at.checkbox(key="batches.grid_judge").check().run()
    at.button(key="batches.launch_grid").click().run()
    assert not at.exception, at.exception
    with engine.connect() as conn:
        ids = conn.execute(sa.select(batch_jobs.c.id).order_by(batch_jobs.c.created_at)).scalars().all()
    assert [service.judge_asked(engine, i) for i in ids[-2:]] == [False, True]  # (the seed made batches before)


def test_a_batchs_detail_shows_its_mode_price_budget_and_remote_batches(open_page, engine):
    """The detail names the mode and its price, the budget, and each remote batch's id and counts."""
    bid = service.create_batch(engine, template="tutoring", count=3, mode="message_batches", budget_usd=2.5)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(message_batch_submissions.insert().values(
            id="sub-1", batch_id=bid, remote_id="msgbatch_01shown", state="in_progress", item_indexes=[0, 1, 2],
            request_count=3, request_bytes=100, counts={"processing": 3, "succeeded": 0, "errored": 0,
                                                        "expired": 0, "canceled": 0},
            results_done=0, created_at=now, updated_at=now, submitted_at=now))
    at = open_page("batches")
    at.button(key=f"batches.list_details_{bid}").click().run()
    assert not at.exception, at.exception
    text = _shown(at)
    assert "Message Batches (half price)" in text and "50 % of online" in text and "budget $2.50" in text
    table = "\n".join(frame.value.to_csv() for frame in at.dataframe)
    assert "msgbatch_01shown" in table and "in_progress" in table and "processing" in table
    assert f"batches.set_budget_{bid}" in {b.key for b in at.button}


def test_the_new_budget_offered_is_above_what_the_batch_has_already_cost(open_page, engine):
    """A batch without a budget that has spent $3.40 is offered more than that, not a cap that would pause it at once."""
    bid = service.create_batch(engine, template="tutoring", count=3, mode="message_batches")
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(status="running", cost_usd=3.4))
    at = open_page("batches")
    at.button(key=f"batches.list_details_{bid}").click().run()
    assert not at.exception, at.exception
    assert at.number_input(key=f"batches.budget_{bid}").value > 3.4
