"""The Batches page names a batch's owner and who acted on it, and offers actions only to who may take them."""

from __future__ import annotations

from e2e_data import shown
from people import person

from core.auth import Role, acting_as
from core.auth.local import forget_local_user
from core.batches import service
from core.config import reload_settings


def _a_batch_others_acted_on(engine) -> tuple[str, dict[str, str]]:
    """A's paused batch, paused and resumed by the admin, then paused by A; the people's ids by name."""
    a, admin = person(engine, "a@example.com"), person(engine, "boss@example.com", Role.ADMIN)
    with acting_as(a):
        bid = service.create_batch(engine, template="tutoring", count=2, name="A's batch")
    with acting_as(admin):
        service.pause_batch(engine, bid)
        service.resume_batch(engine, bid)
    with acting_as(a):
        service.pause_batch(engine, bid)
    return bid, {"a": str(a.user_id), "boss": str(admin.user_id)}


def _table_text(at) -> str:
    return "\n".join(frame.value.to_csv() for frame in at.dataframe)


def test_a_batchs_detail_names_its_owner_and_everyone_who_acted_on_it(open_page, engine):
    """The card says whose it is; the resumes and the history name people, never by their ids."""
    bid, ids = _a_batch_others_acted_on(engine)
    at = open_page("batches")
    at.button(key=f"batches.list_details_{bid}").click().run()
    assert not at.exception, at.exception
    assert "by a ·" in "\n".join(shown(c.value) for c in at.caption)
    tables = _table_text(at)
    assert "created" in tables and "paused" in tables and "resumed" in tables and "boss" in tables
    assert ids["a"] not in tables and ids["boss"] not in tables


def test_a_reviewer_is_offered_no_action_on_someone_elses_batch(open_page, engine, monkeypatch):
    """A reviewer sees A's batch and its details button, but no Resume or Cancel on it."""
    bid, _ = _a_batch_others_acted_on(engine)
    person(engine, "rev@example.com", Role.REVIEWER)
    monkeypatch.setenv("STUDIO_USER", "rev@example.com")  # the page's user in local mode
    reload_settings()
    forget_local_user()
    at = open_page("batches")
    keys = {b.key for b in at.button}
    assert f"batches.list_details_{bid}" in keys
    assert not {k for k in keys if k.endswith(bid) and ("Resume" in k or "Cancel" in k)}, keys
