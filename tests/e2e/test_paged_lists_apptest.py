"""Every list that can grow is paged by its service through the one table state, with a true total (issue 12, item 11)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from e2e_data import insert_conversation, open_groups, select_row, shown

from core.store.schema import batch_jobs, conversation_drafts, utcnow


def _footer(at, noun: str) -> str:
    """The caption under a list that counts its `noun`s."""
    return next(shown(c.value) for c in at.caption if re.search(rf"\b{noun}", c.value))


def _orphans(engine, *, deleted_batch: int, missing_draft: int) -> None:
    """Conversations out of step: of a batch that was deleted (an item index, no batch) and of a draft that is gone."""
    for i in range(deleted_batch):
        insert_conversation(engine, item_index=i)
    for _ in range(missing_draft):
        insert_conversation(engine, draft_id=str(uuid.uuid4()))


def test_sixty_orphaned_conversations_are_all_counted_and_paged(open_page, engine):
    """60 conversations out of step: the footer says 60, page 2 exists and shows the next 20, not the same ones."""
    _orphans(engine, deleted_batch=60, missing_draft=0)
    at = open_page("recovery")
    assert not at.exception
    assert "**60** conversations out of step" in "\n".join(m.value for m in at.markdown)
    assert _footer(at, "conversations") == "1–20 of 60 conversations · page 1 of 3"
    first = list(at.dataframe[0].value["Conversation"])
    at.button(key="recovery.conversations_next").click().run()
    assert not at.exception
    assert _footer(at, "conversations") == "21–40 of 60 conversations · page 2 of 3"
    second = list(at.dataframe[0].value["Conversation"])
    assert len(second) == 20 and not set(first) & set(second)


def test_a_new_reason_filter_goes_back_to_page_one_and_clears_the_selection(open_page, engine):
    """On page 2 with a row selected, choosing "Draft missing" shows page 1 of its own rows and nothing selected."""
    _orphans(engine, deleted_batch=45, missing_draft=3)
    at = open_page("recovery")
    at.button(key="recovery.conversations_next").click().run()
    select_row(at, 1)
    assert [c.value for c in at.code if len(c.value) == 36]  # the selected row's full id
    at.selectbox(key="recovery.reason").select("Draft missing").run()
    assert not at.exception
    assert _footer(at, "conversations") == "3 conversations"
    assert set(at.dataframe[0].value["Why"]) == {"Draft missing"}
    assert not at.code  # no detail: the selection went with the filter
    assert at.session_state["recovery.conversations_list.page"] == 1


def test_stopped_batches_are_paged_with_their_total(open_page, engine, seeded):
    """25 failed batches: 10 cards a page, "1–10 of 25 batches"; showing only Paused starts again at page 1."""
    from core.batches import service

    for _ in range(25):
        bid = service.create_batch(engine, template=seeded["template"], count=1)
        with engine.begin() as conn:
            conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(status="failed",
                                                                                    status_reason="key rejected"))
    at = open_page("recovery")
    assert not at.exception
    assert _footer(at, "batches") == "1–10 of 25 batches · page 1 of 3"
    assert sum(1 for b in at.button if b.label == "Cancel (discard the rest)") == 10
    at.button(key="recovery.batches_next").click().run()
    assert _footer(at, "batches") == "11–20 of 25 batches · page 2 of 3"
    at.get("button_group")[0].set_value("Paused").run()
    assert not at.exception
    assert at.session_state["recovery.batches_list.page"] == 1
    assert any("No paused batches." in s.value for s in at.success)


def _drafts(engine, n: int) -> None:
    from core.auth import current_actor

    owner = current_actor(engine).user_id  # the local user, whom the pages run as
    old = utcnow() - timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(conversation_drafts.insert(), [dict(
            id=str(uuid.uuid4()), user_id=owner, template="customer_support",
            params={"template": "customer_support", "persona": "p", "emotion": "e", "topic": f"topic {i}", "turns": 4},
            partial_text="User: hello\n\nAssistant: hi", turns=[], status="in_progress", progress=0.25,
            created_at=old, updated_at=old - timedelta(seconds=i), expires_at=old + timedelta(hours=24))
            for i in range(n)])


def test_drafts_are_counted_in_full_on_recovery_generate_and_home(open_page, engine):
    """55 open drafts: Recovery and Generate say 55 and page them; Home offers to resume all 55, not 50."""
    _drafts(engine, 55)
    at = open_page("recovery")
    assert _footer(at, "drafts") == "1–10 of 55 drafts · page 1 of 6"
    at = open_page("generate")
    assert any("You have 55 unfinished drafts." in w.value for w in at.warning)
    assert _footer(at, "drafts") == "1–10 of 55 drafts · page 1 of 6"
    at.button(key="generate.drafts_next").click().run()
    assert not at.exception
    assert _footer(at, "drafts") == "11–20 of 55 drafts · page 2 of 6"
    assert "topic 10" in "\n".join(m.value for m in at.markdown)
    at = open_page("home")
    assert any(link.label == "Resume or discard 55 drafts in Generate" for link in at.get("page_link"))


def test_the_batches_list_is_paged_with_its_total(open_page, engine, seeded):
    """With 24 more batches than the seeded one, Batches shows 10 cards and "1–10 of 25 batches", then the next 10."""
    from core.batches import service

    for _ in range(24):
        service.create_batch(engine, template=seeded["template"], count=1)
    at = open_page("batches")
    assert not at.exception
    assert _footer(at, "batches") == "1–10 of 25 batches · page 1 of 3"
    first = {b.key for b in at.button if b.key and b.key.startswith("batches.list_details_")}
    at.button(key="batches.list_next").click().run()
    second = {b.key for b in at.button if b.key and b.key.startswith("batches.list_details_")}
    assert len(first) == len(second) == 10 and not first & second


def test_error_groups_are_paged_and_counted(open_page):
    """Every group the filters select is counted; Next shows the next page of groups, not the same ones."""
    at = open_groups(open_page)
    footer = _footer(at, "groups")
    total = int(re.search(r"of ([\d,]+) groups", footer).group(1))
    assert footer.startswith("1–20 of ") and total > 20
    first = {b.key for b in at.button if b.key and b.key.startswith("errors.open_group_")}
    at.button(key="errors.groups_next").click().run()
    assert not at.exception
    assert _footer(at, "groups").startswith(f"21–{min(40, total)} of {total} groups · page 2")
    second = {b.key for b in at.button if b.key and b.key.startswith("errors.open_group_")}
    assert len(first) == 20 and second and not first & second


def test_a_filter_change_drops_the_group_being_resolved_and_goes_back_to_page_one(open_page):
    """On page 2, Resolve all asks to confirm; a new filter shows page 1 and no question about that group."""
    at = open_groups(open_page)
    at.button(key="errors.groups_next").click().run()
    button = next(b for b in at.button if b.key and b.key.startswith("errors.resolve_group_"))
    fp = button.key.removeprefix("errors.resolve_group_")
    button.click().run()
    assert any(w.value.startswith("Resolve ") for w in at.warning)
    at.selectbox(key="errors.resolved").select("Open").run()
    assert not at.exception
    assert _footer(at, "groups").startswith("1–20 of ")
    assert not [w for w in at.warning if w.value.startswith("Resolve ")]
    assert f"errors.confirm_yes_{fp}" not in {b.key for b in at.button}
    at.selectbox(key="errors.resolved").select("All").run()
    assert not [w for w in at.warning if w.value.startswith("Resolve ")]  # not back when the filter is
