"""Batches and conversations an analyst can tell apart; Home offers the next actions (issue 12, items 20–22)."""

from __future__ import annotations

import re
from datetime import timedelta

from e2e_data import insert_conversation, listed, shown
from sqlalchemy import func, select

from core.errorlog import flush
from core.store.schema import batch_jobs, error_logs, utcnow

_RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _texts(at) -> str:
    return "\n".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning,
                                             *at.success, *at.subheader])


def _links(at) -> list[tuple[str, str, str]]:
    """(label, page, query string) of every page link on the page."""
    return [(e.proto.label, e.proto.page, e.proto.query_string) for e in at.get("page_link")]


def _finish(engine, batch_id: str, *, done: int, minutes: float) -> None:
    """Make a batch completed, started `minutes` before it finished, with `done` conversations."""
    end = utcnow()
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
            status="completed", started_at=end - timedelta(minutes=minutes), finished_at=end))
    from core.store.schema import batch_items

    with engine.begin() as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id,
                                                batch_items.c.item_index < done).values(status="done"))


def test_a_batch_launched_with_a_name_shows_that_name(open_page, engine):
    """The name typed in the create form is the batch's name on its card."""
    from core.batches import service

    at = open_page("batches")
    template = at.selectbox(key="batches.template").value
    at.text_input(key=f"batches.name_{template}").input("Refund tone study")
    at.button(key="batches.launch_grid").click().run()
    assert not at.exception
    names = [b["name"] for b in service.list_batches(engine)]
    assert "Refund tone study" in names
    assert "Refund tone study" in _texts(at)


def test_a_finished_batch_card_shows_its_final_rate_and_duration_not_a_zero_eta(open_page, engine, seeded):
    """A completed batch says its overall conv/min and how long it took, with no 'ETA 0 s' and no raw ISO time."""
    _finish(engine, seeded["batch_id"], done=3, minutes=2)
    at = open_page("batches")
    at.button(key=f"batches.list_details_{seeded['batch_id']}").click().run()
    assert not at.exception
    text = _texts(at)
    assert "1.5 conv/min overall · took 2 min" in text
    assert "ETA 0 s" not in text and "0.0 conv/min" not in text
    assert re.search(r"created \d+ s ago", text)  # seconds ago, however long the run took on a loaded machine
    assert not _RAW_ISO.search(text), _RAW_ISO.search(text)


def test_a_batch_card_links_to_its_conversations_and_its_errors(open_page, seeded):
    """Each card links to Conversations and to Errors, both filtered to the batch."""
    at = open_page("batches")
    links = _links(at)
    assert ("Its conversations", "conversations", f"batch={seeded['batch_id']}") in links
    assert ("Its errors", "errors", f"batch={seeded['batch_id']}") in links


def test_conversations_accept_a_short_batch_id(open_page, engine, seeded):
    """The first 8 characters of a batch id list that batch's conversations and no others."""
    insert_conversation(engine, batch_id=seeded["batch_id"], item_index=0)
    at = open_page("conversations")
    at.selectbox(key="conversations.source").set_value("A batch").run()
    at.text_input(key="conversations.batch").input(seeded["batch_id"][:8]).run()
    assert not at.exception
    assert len(listed(at)) == 1 and len(at.dataframe[0].value) == 1
    assert list(at.dataframe[0].value["Batch"]) == [seeded["batch_id"][:8]]


def test_conversations_offer_a_batch_picker_by_name(open_page, engine, seeded):
    """The batch picker names each batch; choosing one lists its conversations."""
    insert_conversation(engine, batch_id=seeded["batch_id"], item_index=0)
    at = open_page("conversations")
    at.selectbox(key="conversations.source").set_value("A batch").run()
    picker = at.selectbox(key="conversations.batch_pick")
    assert any(seeded["batch_id"][:8] in o and " x 3 · " in o for o in picker.options), picker.options
    picker.set_value(seeded["batch_id"]).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 1


def test_a_batch_with_none_chosen_shows_nothing(open_page):
    """'A batch' with no batch chosen lists no conversations and says to choose one."""
    at = open_page("conversations")
    assert len(listed(at)) == 1  # the seeded single generation, under "All"
    at.selectbox(key="conversations.source").set_value("A batch").run()
    assert not at.exception
    assert len(at.dataframe) == 0
    assert any("Choose a batch" in i.value for i in at.info)


def test_conversations_linked_from_a_batch_are_filtered_to_it(open_page, engine, seeded):
    """?batch=<id> opens Conversations on 'A batch' with that batch's conversations only."""
    insert_conversation(engine, batch_id=seeded["batch_id"], item_index=0)
    at = open_page("conversations")
    at.query_params["batch"] = seeded["batch_id"]
    at.run()
    assert not at.exception
    assert at.selectbox(key="conversations.source").value == "A batch"
    assert list(at.dataframe[0].value["Batch"]) == [seeded["batch_id"][:8]]


def test_home_offers_the_next_actions(open_page, engine, seeded):
    """Home links to Generate and New batch, and a failed batch gets its one-click Retry failed there."""
    from core.batches import service
    from core.store.schema import batch_items

    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == seeded["batch_id"]).values(status="failed"))
        conn.execute(batch_items.update().where(batch_items.c.batch_id == seeded["batch_id"],
                                                batch_items.c.item_index == 0).values(status="failed"))
    at = open_page("home")
    labels = {label for label, _, _ in _links(at)}
    assert {"Generate one", "New batch"} <= labels
    at.button(key=f"home.Retry failed_{seeded['batch_id']}").click().run()
    assert not at.exception
    status = service.get_batch_status(engine, seeded["batch_id"])
    assert status["state"] == "queued" and status["failed"] == 0


def test_home_counts_errors_not_debug_or_info_rows(open_page):
    """Home's 24-hour cards are the error severities only: no debug or info card."""
    at = open_page("home")
    labels = {m.label for m in at.metric}
    assert labels == {"critical", "error", "warn"}


def test_an_unknown_batch_link_is_recorded_once_per_session(open_page, engine):
    """?batch=<unknown> says so, and the error log gets one unknown_batch row however often the page reruns."""
    at = open_page("batches")
    at.query_params["batch"] = "no-such-batch"
    for _ in range(4):
        at.run()
    assert not at.exception
    assert any("no-such-batch" in shown(w.value) for w in at.warning)
    flush()
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(error_logs)
                         .where(error_logs.c.error_code == "unknown_batch")).scalar_one()
    assert n == 1
