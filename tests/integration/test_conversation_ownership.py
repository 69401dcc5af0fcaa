"""Conversations on both engines: each analyst reaches their own, a reviewer reads every one, an admin everything.

What someone may not see answers exactly as an id that does not exist, in the services and the
CLI (exit 1). A delete and each export write one audit row; one that fails writes none.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from audit_support import audit_rows, fail_after
from cli_runner import run_cli
from people import cast

from core import conversations as convs
from core.auth import acting_as, system_actor
from core.auth.audit import AuditAction
from core.errors import AppError, ErrorCode, NotFoundError
from core.store.schema import conversations, utcnow
from core.store.tx import read_conn, write_tx


def _conversation(engine, owner_id: str | None, *, template: str = "tutoring", topic: str = "clouds") -> str:
    """A saved single generation owned by `owner_id`; its id."""
    cid = str(uuid.uuid4())
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(conversations.insert().values(
            id=cid, template=template, model="m", params={"persona": "p", "emotion": "e", "topic": topic},
            system_prompt="Be kind.", turns=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            turn_count=2, input_tokens=1, output_tokens=1, cost_usd=0.0, status="ok", owner_id=owner_id,
            created_at=utcnow(), error_count=0, is_recovering=False, recovery_attempts=0))
    return cid


def _exists(engine, cid: str) -> bool:
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(conversations)
                            .where(conversations.c.id == cid)).scalar_one() == 1


def _ids(engine) -> set[str]:
    return {r["id"] for r in convs.list_conversations(engine, page_size=100).rows}


def test_an_analyst_lists_and_reads_only_their_own_a_reviewer_and_an_admin_every_one(engine):
    """A lists and reads A's conversation; B neither; the reviewer and the admin list and read both."""
    people = cast(engine)
    a_conv, b_conv = _conversation(engine, people.a.user_id), _conversation(engine, people.b.user_id)
    with acting_as(people.a):
        assert _ids(engine) == {a_conv} and convs.get_conversation(engine, a_conv) is not None
    with acting_as(people.b):
        assert _ids(engine) == {b_conv}
        assert convs.list_conversations(engine).total == 1
        assert convs.get_conversation(engine, a_conv) is None
    for everyone in (people.reviewer, people.admin):
        with acting_as(everyone):
            assert _ids(engine) == {a_conv, b_conv}
            assert convs.get_conversation(engine, a_conv)["owner_id"] == people.a.user_id


def test_someone_elses_conversation_answers_like_an_unknown_id(engine):
    """B reading or deleting A's conversation gets the very message an id that does not exist gets."""
    people = cast(engine)
    a_conv, unknown = _conversation(engine, people.a.user_id), str(uuid.uuid4())
    with acting_as(people.b):
        for call in (convs.require_conversation, convs.delete_conversation):
            with pytest.raises(NotFoundError) as theirs:
                call(engine, a_conv)
            with pytest.raises(NotFoundError) as nobodys:
                call(engine, unknown)
            assert theirs.value.user_message.replace(a_conv, "ID") == nobodys.value.user_message.replace(unknown, "ID")
            assert theirs.value.code == nobodys.value.code == ErrorCode.NOT_FOUND
    assert _exists(engine, a_conv)
    assert audit_rows(engine, AuditAction.CONVERSATION_DELETE) == []


def test_a_reviewer_reads_but_cannot_delete_someone_elses_conversation(engine):
    """The reviewer is refused the delete by name (it is not hidden from them); nothing is deleted or audited."""
    people = cast(engine)
    a_conv = _conversation(engine, people.a.user_id)
    with acting_as(people.reviewer), pytest.raises(NotFoundError) as refused:
        convs.delete_conversation(engine, a_conv)
    assert refused.value.code == ErrorCode.PERMISSION_DENIED and "admin" in refused.value.user_message
    assert _exists(engine, a_conv)
    assert audit_rows(engine, AuditAction.CONVERSATION_DELETE) == []


def test_a_delete_by_its_owner_or_an_admin_writes_exactly_one_audit_row(engine):
    """A deletes A's conversation, the admin deletes B's: each is gone with one audit row naming who and what."""
    people = cast(engine)
    a_conv, b_conv = _conversation(engine, people.a.user_id), _conversation(engine, people.b.user_id)
    with acting_as(people.a):
        convs.delete_conversation(engine, a_conv)
    with acting_as(people.admin):
        convs.delete_conversation(engine, b_conv)
    assert not _exists(engine, a_conv) and not _exists(engine, b_conv)
    rows = audit_rows(engine, AuditAction.CONVERSATION_DELETE)
    assert [(r["actor_id"], r["target_id"]) for r in rows] == [(people.a.user_id, a_conv),
                                                                (people.admin.user_id, b_conv)]
    assert rows[1]["detail"]["owner_id"] == people.b.user_id


def test_a_delete_that_fails_after_its_write_keeps_the_conversation_and_leaves_no_audit_row(engine, monkeypatch):
    """A failure after the audit row is written rolls the delete and the row back together."""
    people = cast(engine)
    a_conv = _conversation(engine, people.a.user_id)
    monkeypatch.setattr(convs, "audit", fail_after(convs.audit))
    with acting_as(people.a), pytest.raises(AppError):
        convs.delete_conversation(engine, a_conv)
    assert _exists(engine, a_conv)
    assert audit_rows(engine, AuditAction.CONVERSATION_DELETE) == []


def test_an_export_holds_what_the_actor_may_export_and_writes_one_audit_row_with_its_filter(engine):
    """B's export leaves A's conversation out, the reviewer's holds both; each export is one audit row."""
    import io

    from core.datasets import DatasetExport, ExportSpec

    people = cast(engine)
    _conversation(engine, people.a.user_id, topic="a-topic")
    _conversation(engine, people.b.user_id, topic="b-topic")
    flt = convs.ConversationFilter(template="tutoring")
    with acting_as(people.b):
        b_export = DatasetExport(engine, flt, ExportSpec(format="csv", status="all"))
    with acting_as(people.reviewer):
        r_export = DatasetExport(engine, flt, ExportSpec(format="openai", status="all"))
    b_out, r_out = io.StringIO(), io.StringIO()
    b_export.stream(b_out)  # read outside the block: as the person who made it
    r_export.stream(r_out)
    b_lines, r_lines = b_out.getvalue().splitlines(), r_out.getvalue().splitlines()
    assert len(b_lines) == 2 and "b-topic" in b_lines[1] and "a-topic" not in "".join(b_lines)
    assert len(r_lines) == 2
    rows = audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS)
    assert [(r["actor_id"], r["detail"]["rows"], r["detail"]["format"]) for r in rows] == [
        (people.b.user_id, 1, "csv"), (people.reviewer.user_id, 2, "openai")]
    assert rows[0]["detail"]["filter"] == {"template": "tutoring"} and rows[0]["detail"]["complete"] is True


def test_a_download_keeps_the_person_who_asked_and_its_audit_says_how_much_it_holds(engine):
    """The page's capped download reads as its maker on another thread; its audit row counts the rows it holds."""
    import io
    import threading
    import zipfile

    from core.datasets import DatasetExport, ExportSpec

    people = cast(engine)
    for _ in range(3):
        _conversation(engine, people.a.user_id)
    _conversation(engine, people.b.user_id)
    with acting_as(people.a):
        export = DatasetExport(engine, None, ExportSpec(status="all"), via="download")
    line = len(next(export.lines()).encode())
    out: list[bytes] = []

    def download(limit: int | None) -> None:  # as Streamlit builds a deferred download: a thread with no actor
        thread = threading.Thread(target=lambda: out.append(export.archive(limit_bytes=limit)))
        thread.start()
        thread.join(30)

    download(None)
    download(2 * line)
    files = [zipfile.ZipFile(io.BytesIO(data)).read("conversations.jsonl") for data in out]
    assert [data.count(b"\n") for data in files] == [3, 2]  # A's three, not B's; then as many as fit
    rows = audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS)
    assert {r["actor_id"] for r in rows} == {people.a.user_id}
    assert [(r["detail"]["rows"], r["detail"]["complete"], r["detail"]["via"]) for r in rows] == [
        (3, True, "download"), (2, False, "download")]


def _as(email: str) -> dict[str, str]:
    return {"STUDIO_USER": email}


def test_cli_answers_someone_elses_conversation_like_an_unknown_one(engine):
    """`conversations show` and `delete` of A's id exit 1 for B with an unknown id's words; A's own work."""
    people = cast(engine)
    a_conv, unknown = _conversation(engine, people.a.user_id), str(uuid.uuid4())
    for action in ("show", "delete"):
        theirs = run_cli(["conversations", action, a_conv], env=_as("b@example.com"))
        nobodys = run_cli(["conversations", action, unknown], env=_as("b@example.com"))
        assert theirs.returncode == nobodys.returncode == 1
        assert theirs.stderr.replace(a_conv, "ID") == nobodys.stderr.replace(unknown, "ID")
        assert "There is no conversation" in theirs.stderr
    shown = run_cli(["conversations", "show", a_conv, "--json"], env=_as("a@example.com"))
    assert shown.returncode == 0 and json.loads(shown.stdout)["messages"][0]["content"] == "Be kind."
    refused = run_cli(["conversations", "delete", a_conv], env=_as("r@example.com"))
    assert refused.returncode == 1 and _exists(engine, a_conv)
    deleted = run_cli(["conversations", "delete", a_conv], env=_as("a@example.com"))
    assert deleted.returncode == 0 and not _exists(engine, a_conv)
    assert len(audit_rows(engine, AuditAction.CONVERSATION_DELETE)) == 1


def test_cli_lists_and_exports_per_role(engine, tmp_path):
    """`conversations list` and `export` hold B's own for B, and everyone's for the reviewer and the admin."""
    people = cast(engine)
    a_conv, b_conv = _conversation(engine, people.a.user_id), _conversation(engine, people.b.user_id)
    expected = {"b@example.com": {b_conv}, "r@example.com": {a_conv, b_conv}, "m@example.com": {a_conv, b_conv}}
    for email, ids in expected.items():
        listed = run_cli(["conversations", "list", "--json"], env=_as(email))
        assert listed.returncode == 0 and {r["id"] for r in json.loads(listed.stdout)} == ids, email
        out = tmp_path / f"{email}.csv"
        exported = run_cli(["conversations", "export", "--out", str(out), "--status", "all"], env=_as(email))
        assert exported.returncode == 0 and f"exported {len(ids)} conversations" in exported.stderr
        assert {line.split(",")[0] for line in out.read_text().splitlines()[1:]} == ids
    rows = audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS)
    assert [r["detail"]["rows"] for r in rows] == [1, 2, 2]
    assert {r["detail"]["via"] for r in rows} == {"cli"}


def test_cli_export_that_cannot_write_its_file_leaves_no_audit_row(engine, tmp_path):
    """An export into a folder that does not exist fails (exit 1) and writes no audit row."""
    people = cast(engine)
    _conversation(engine, people.a.user_id)
    failed = run_cli(["conversations", "export", "--out", str(tmp_path / "missing" / "out.jsonl")],
                     env=_as("a@example.com"))
    assert failed.returncode == 1
    assert audit_rows(engine, AuditAction.EXPORT_CONVERSATIONS) == []


def test_a_batch_items_conversation_is_the_batch_owners_whoever_saves_it(engine):
    """The system (a worker) committing an item of A's batch saves a conversation A sees and B does not."""
    from core.batches import checkpoints
    from core.batches.leases import claim_batch, claim_items
    from core.batches.service import create_batch
    from core.generation import Conversation, GenerationParams, GenerationResult
    from core.generation.models import Turn
    from core.llm.client import LLMResult, Usage
    from core.store.schema import batch_jobs

    people = cast(engine)
    batch_id = create_batch(engine, template="customer_support", count=1, turns=2)
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(owner_id=people.a.user_id))
    usage = Usage(input_tokens=10, output_tokens=5)
    llm = LLMResult(text="", usage=usage, cost_usd=0.0, request_id="req", model="m", stop_reason="end_turn",
                    attempts=1)
    result = GenerationResult(Conversation("s", [Turn("user", "Hi"), Turn("assistant", "Hello")]), llm,
                              GenerationParams("customer_support", "p", "e", "t", 2), "", usage, 0.0)
    with acting_as(system_actor()):
        assert claim_batch(engine, "w1") is not None
        [item] = claim_items(engine, batch_id, "w1", 1)
        assert checkpoints.commit_item(engine, item, result) is True
    with acting_as(people.a):
        [row] = convs.list_conversations(engine).rows
    assert row["batch_id"] == batch_id and row["owner_id"] == people.a.user_id
    with acting_as(people.b):
        assert convs.list_conversations(engine).total == 0
