"""Batches are their creator's, on both engines: another analyst finds none, a reviewer sees but cannot act, an admin can.

Every control action writes exactly one audit row in its own transaction; the worker works every
person's batch as the system, and what it saves for a batch is the batch owner's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from batch_support import UNLIMITED_RATE, postgres_engine
from cli_runner import CliRun, run_cli
from people import person
from sqlalchemy import event

from core.auth import Actor, Role, acting_as, system_actor
from core.batches import service
from core.batches.service import (
    batch_history,
    batch_names,
    cancel_batch,
    create_batch,
    failed_items_page,
    get_batch_status,
    list_batches,
    pause_batch,
    resolve_batch_id,
    resume_batch,
    resume_history,
)
from core.batches.worker import BatchWorker
from core.config import override_settings
from core.errorlog import flush
from core.errors import AppError, ErrorCode, NotFoundError, ValidationError
from core.store.schema import audit_events, batch_items, batch_jobs, conversations, error_logs
from core.store.tx import write_tx

SANDBOX = {"seed": 11, "latency_ms": 0, "tokens_per_s": 200_000.0, "retry_after_s": 0.0}
SANDBOX_ENV = {**UNLIMITED_RATE, "STUDIO_WORKER_POLL_INTERVAL_S": "0.1", "STUDIO_HEARTBEAT_INTERVAL_S": "0.3"}

A, B, R, ADMIN = "a@example.com", "b@example.com", "r@example.com", "admin@example.com"


@pytest.fixture
def people(engine) -> dict[str, Actor]:
    """A and B (analysts), R (a reviewer) and an admin, signed in."""
    return {"a": person(engine, A), "b": person(engine, B), "r": person(engine, R, Role.REVIEWER),
            "admin": person(engine, ADMIN, Role.ADMIN)}


def _as_system(engine, query: Any) -> list[Any]:
    with acting_as(system_actor()), engine.connect() as conn:
        return list(conn.execute(query).mappings().all())


def _audits(engine, batch_id: str) -> list[Any]:
    return _as_system(engine, sa.select(audit_events).where(audit_events.c.target_id == batch_id)
                      .order_by(audit_events.c.id))


def _batch(engine, batch_id: str) -> Any:
    (row,) = _as_system(engine, sa.select(batch_jobs).where(batch_jobs.c.id == batch_id))
    return row


def _set(engine, batch_id: str, *, status: str, failed: tuple[int, ...] = ()) -> None:
    with acting_as(system_actor()), write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(status=status))
        if failed:
            conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id,
                                                    batch_items.c.item_index.in_(failed)).values(status="failed"))


def _refusal(fn: Callable[[], Any]) -> AppError:
    with pytest.raises(AppError) as exc:
        fn()
    return exc.value


def _as_unknown(engine, who: Actor, action: Callable[[str], Any], batch_id: str) -> tuple[AppError, AppError]:
    """`action` on `batch_id` and on an unknown id, as `who`; the unknown one's message as if about `batch_id`."""
    unknown = str(uuid.uuid4())
    with acting_as(who):
        mine, none = _refusal(lambda: action(batch_id)), _refusal(lambda: action(unknown))
    none.user_message = none.user_message.replace(unknown, batch_id).replace(unknown[:8], batch_id[:8])
    return mine, none


ACTIONS: dict[str, Callable[[Any, str], Any]] = {
    "status": get_batch_status,
    "failed items": failed_items_page,
    "resumes": resume_history,
    "history": batch_history,
    "short id": lambda engine, bid: resolve_batch_id(engine, bid[:8]),
    "pause": pause_batch,
    "resume": resume_batch,
    "retry failed": lambda engine, bid: resume_batch(engine, bid, failed_only=True),
    "cancel": cancel_batch,
}


def test_a_batch_belongs_to_whoever_created_it_and_its_creation_is_audited(engine, people):
    """The new batch carries its creator's id and name, and one audit row names them as its creator."""
    a = people["a"]
    with acting_as(a):
        bid = create_batch(engine, template="tutoring", count=3)
        st = get_batch_status(engine, bid)
    assert (_batch(engine, bid)["owner_id"], st["owner"], st["may_act"]) == (a.user_id, "a", True)
    (row,) = _audits(engine, bid)
    assert (row["action"], row["actor_id"], row["target_kind"], row["detail"]["items"]) == (
        "batch.create", a.user_id, "batch", 3)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_another_analysts_batch_answers_as_one_that_does_not_exist(engine, people, action):
    """B reading or acting on A's batch gets the very refusal an unknown id gets, and nothing changes."""
    with acting_as(people["a"]):
        bid = create_batch(engine, template="tutoring", count=3)
    _set(engine, bid, status="paused", failed=(1,))
    before = dict(_batch(engine, bid))
    theirs, unknown = _as_unknown(engine, people["b"], lambda b: ACTIONS[action](engine, b), bid)
    assert isinstance(theirs, NotFoundError) and type(theirs) is type(unknown)
    assert (theirs.user_message, theirs.code) == (unknown.user_message, unknown.code)
    assert theirs.code is ErrorCode.UNKNOWN_BATCH
    assert dict(_batch(engine, bid)) == before and len(_audits(engine, bid)) == 1  # its creation only


def test_another_analyst_lists_none_of_a_batch(engine, people):
    """A's batch is in A's list and picker; B's are empty."""
    with acting_as(people["a"]):
        bid = create_batch(engine, template="tutoring", count=2)
        assert [b["id"] for b in list_batches(engine)] == [bid] and [b["id"] for b in batch_names(engine)] == [bid]
    with acting_as(people["b"]):
        assert list_batches(engine) == [] and batch_names(engine) == []
        assert list_batches(engine, owner_id=people["a"].user_id) == []


def test_a_reviewer_sees_every_batch_but_acts_only_on_their_own(engine, people):
    """R lists and reads A's batch (no actions offered), is refused every action on it, and may act on R's own."""
    with acting_as(people["a"]):
        bid = create_batch(engine, template="tutoring", count=3)
    _set(engine, bid, status="paused", failed=(0,))
    before = dict(_batch(engine, bid))
    with acting_as(people["r"]):
        listed = {b["id"]: b for b in list_batches(engine)}
        assert bid in listed and listed[bid]["owner"] == "a" and listed[bid]["may_act"] is False
        assert get_batch_status(engine, bid)["id"] == bid and [e["action"] for e in batch_history(engine, bid)] == [
            "batch.create"]
        for name in ("pause", "resume", "retry failed", "cancel"):
            err = _refusal(lambda name=name: ACTIONS[name](engine, bid))
            assert isinstance(err, NotFoundError) and err.code is ErrorCode.PERMISSION_DENIED, name
            assert "not yours" in err.user_message and "owner or an admin" in err.user_message
        own = create_batch(engine, template="tutoring", count=1)
        pause_batch(engine, own)
    assert dict(_batch(engine, bid)) == before and len(_audits(engine, bid)) == 1
    assert _batch(engine, own)["status"] == "paused"


def test_an_admin_reads_and_acts_on_anyones_batch(engine, people):
    """The admin pauses, resumes and cancels A's batch; each action's audit row names the admin."""
    with acting_as(people["a"]):
        bid = create_batch(engine, template="tutoring", count=3)
    admin = people["admin"]
    with acting_as(admin):
        assert bid in [b["id"] for b in list_batches(engine)] and get_batch_status(engine, bid)["may_act"]
        pause_batch(engine, bid)
        assert resume_batch(engine, bid) == 3
        assert cancel_batch(engine, bid) == 3
    rows = _audits(engine, bid)
    assert [(r["action"], r["actor_id"]) for r in rows[1:]] == [
        ("batch.pause", admin.user_id), ("batch.resume", admin.user_id), ("batch.cancel", admin.user_id)]


# each control action: the state it starts from, and how it is called
CONTROL: dict[str, tuple[str, Callable[[Any, str], Any], str]] = {
    "pause": ("running", pause_batch, "batch.pause"),
    "resume": ("paused", resume_batch, "batch.resume"),
    "retry failed": ("failed", lambda engine, bid: resume_batch(engine, bid, failed_only=True), "batch.retry_failed"),
    "cancel": ("paused", cancel_batch, "batch.cancel"),
}


@pytest.mark.parametrize("action", list(CONTROL))
def test_each_control_action_writes_exactly_one_audit_row(engine, people, action):
    """A pausing, resuming, retrying or cancelling A's batch leaves one audit row naming A, and its history shows it."""
    start, fn, audited = CONTROL[action]
    a = people["a"]
    with acting_as(a):
        bid = create_batch(engine, template="tutoring", count=3)
    _set(engine, bid, status=start, failed=(2,))
    with acting_as(a):
        fn(engine, bid)
        history = batch_history(engine, bid)
    rows = _audits(engine, bid)
    assert [(r["action"], r["actor_id"]) for r in rows] == [("batch.create", a.user_id), (audited, a.user_id)]
    assert [(e["action"], e["by"]) for e in history] == [("batch.create", "a"), (audited, "a")]


@pytest.mark.parametrize("action", [*CONTROL, "create"])
def test_an_action_that_fails_after_its_write_leaves_no_audit_row(engine, people, action, monkeypatch):
    """A failure after the action's write and its audit row rolls both back: the batch is as before, no row stays."""
    a = people["a"]
    with acting_as(a):
        bid = create_batch(engine, template="tutoring", count=3)
    if action != "create":
        _set(engine, bid, status=CONTROL[action][0], failed=(2,))
    before = dict(_batch(engine, bid))
    real = service.audit

    def audit_then_fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("forced failure after the write")

    monkeypatch.setattr(service, "audit", audit_then_fail)
    with acting_as(a), pytest.raises(AppError):
        if action == "create":
            create_batch(engine, template="tutoring", count=2)
        else:
            CONTROL[action][1](engine, bid)
    assert dict(_batch(engine, bid)) == before
    assert len(_as_system(engine, sa.select(audit_events).where(audit_events.c.target_kind == "batch"))) == 1
    assert len(_as_system(engine, sa.select(batch_jobs))) == 1


def test_a_refused_action_leaves_no_audit_row(engine, people):
    """Resuming a completed batch or pausing a cancelled one is refused and audits nothing."""
    with acting_as(people["a"]):
        done = create_batch(engine, template="tutoring", count=1)
        gone = create_batch(engine, template="tutoring", count=1)
    _set(engine, done, status="completed")
    _set(engine, gone, status="cancelled")
    with acting_as(people["a"]):
        with pytest.raises(ValidationError):
            resume_batch(engine, done)
        with pytest.raises(ValidationError):
            pause_batch(engine, gone)
    assert [r["action"] for r in _audits(engine, done) + _audits(engine, gone)] == ["batch.create"] * 2


def test_resumes_name_the_person_who_resumed(engine, people):
    """batch_resumes keeps the resumer's id, and the history gives their name."""
    with acting_as(people["a"]):
        bid = create_batch(engine, template="tutoring", count=2)
    _set(engine, bid, status="paused")
    with acting_as(people["admin"]):
        resume_batch(engine, bid)
    with acting_as(people["a"]):
        (resume,) = resume_history(engine, bid)
    assert (resume["resumed_by"], resume["resumed_by_name"]) == (people["admin"].user_id, "admin")


# ---- the CLI --------------------------------------------------------------------------------------------


def _cli(who: str, *args: str) -> CliRun:
    return run_cli(args, env={"STUDIO_USER": who})


@pytest.mark.parametrize("command", [
    ["batch", "status", "{id}"], ["batch", "status", "{id}", "--json"], ["batch", "resume", "{id}"],
    ["batch", "resume", "{id}", "--failed-only"], ["batch", "pause", "{id}"], ["batch", "cancel", "{id}"],
    ["conversations", "export", "--batch", "{id}", "--out", "-"],
])
def test_the_cli_answers_another_analyst_as_for_an_unknown_id(engine, people, command):
    """B's command on A's batch exits 1 with the same words as on an id that does not exist."""
    made = _cli(A, "batch", "create", "--template", "tutoring", "--count", "2")
    assert made.returncode == 0, made.stderr
    bid = made.stdout.strip()
    unknown = str(uuid.uuid4())
    theirs = _cli(B, *(part.format(id=bid) for part in command))
    none = _cli(B, *(part.format(id=unknown) for part in command))
    assert (theirs.returncode, none.returncode) == (1, 1), (theirs.stderr, none.stderr)
    assert theirs.stderr == none.stderr.replace(unknown, bid) and "There is no batch" in theirs.stderr
    assert theirs.stdout == none.stdout == ""
    with acting_as(people["a"]):
        assert get_batch_status(engine, bid)["state"] == "queued"


def test_the_cli_lists_a_batch_for_its_owner_a_reviewer_and_an_admin_only(engine, people):
    """`batch list --json`: A, R and the admin see A's batch (named as A's); B sees none."""
    bid = _cli(A, "batch", "create", "--template", "tutoring", "--count", "1").stdout.strip()
    for who, sees in ((A, True), (R, True), (ADMIN, True), (B, False)):
        listed = _cli(who, "batch", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {b["id"]: b for b in json.loads(listed.stdout)}
        assert (bid in rows) is sees, who
        if sees:
            assert rows[bid]["owner"] == "a"


def test_the_cli_lets_only_the_owner_and_an_admin_act(engine, people):
    """R's resume and cancel of A's batch exit 1, saying it is not theirs; the admin's and A's succeed."""
    bid = _cli(A, "batch", "create", "--template", "tutoring", "--count", "2").stdout.strip()
    for command in (("batch", "pause", bid), ("batch", "cancel", bid)):
        refused = _cli(R, *command)
        assert refused.returncode == 1 and "not yours" in refused.stderr, refused.stderr
    assert _cli(ADMIN, "batch", "pause", bid).returncode == 0
    assert _cli(A, "batch", "resume", bid).returncode == 0
    assert _cli(A, "batch", "cancel", bid).returncode == 0
    assert [r["action"] for r in _audits(engine, bid)] == ["batch.create", "batch.pause", "batch.resume",
                                                           "batch.cancel"]


# ---- the worker ------------------------------------------------------------------------------------------


def _work(engine, started_by: Actor) -> BatchWorker:
    """One `worker --once` started from `started_by`'s context (as the CLI or a page would)."""
    worker = BatchWorker(engine, concurrency=3)
    with acting_as(started_by):
        assert asyncio.run(worker.run(once=True)) == 0
    return worker


def test_the_worker_saves_a_batchs_conversations_and_errors_as_its_owners(engine, people, sandbox):
    """Started by B, the worker fails then completes A's batch: error rows name A, each conversation is A's, once."""
    a = people["a"]
    override_settings(item_max_attempts=1, retry_max_attempts=1, breaker_failure_threshold=100_000)
    with acting_as(a):
        bid = create_batch(engine, template="tutoring", count=3, turns=4)
    sandbox.configure(force_status=500)
    _work(engine, people["b"])
    flush()
    errors = _as_system(engine, sa.select(error_logs.c.user_id).where(error_logs.c.operation_id == bid))
    assert errors and {e["user_id"] for e in errors} == {a.user_id}
    sandbox.configure(force_status=None)
    with acting_as(a):
        assert resume_batch(engine, bid, failed_only=True) == 3
    _work(engine, people["b"])
    saved = _as_system(engine, sa.select(conversations.c.item_index, conversations.c.owner_id)
                       .where(conversations.c.batch_id == bid))
    assert sorted(c["item_index"] for c in saved) == [0, 1, 2] and {c["owner_id"] for c in saved} == {a.user_id}
    with acting_as(a):
        st = get_batch_status(engine, bid)
    assert (st["state"], st["done"]) == ("completed", 3)
    with acting_as(people["b"]):
        assert list_batches(engine) == []  # the worker's work did not make it B's


@pytest.mark.postgres
def test_the_worker_runs_every_transaction_as_service_role_for_the_batch_owner(pg_databases, sandbox, monkeypatch):
    """On Postgres each worker transaction runs as service_role; those on A's batch carry A's id as auth.uid()."""
    seen: list[tuple[str, str | None]] = []

    def _who(conn: Any) -> None:  # just before the COMMIT: the role and claims the transaction ran with
        row = conn.connection.driver_connection.execute("select current_user::text, auth.uid()::text").fetchone()
        seen.append((row[0], row[1]))

    with postgres_engine(pg_databases, monkeypatch) as engine:
        a, b = person(engine, A), person(engine, B)
        with acting_as(a):
            bid = create_batch(engine, template="tutoring", count=4, turns=4)
        event.listen(engine, "commit", _who)
        try:
            _work(engine, b)
        finally:
            event.remove(engine, "commit", _who)
        assert seen and {role for role, _ in seen} == {"service_role"}
        assert {uid for _, uid in seen} <= {None, a.user_id} and (  # the batch's own work is A's
            "service_role", a.user_id) in seen
        saved = _as_system(engine, sa.select(conversations.c.item_index, conversations.c.owner_id)
                           .where(conversations.c.batch_id == bid))
        assert sorted(c["item_index"] for c in saved) == [0, 1, 2, 3] and {c["owner_id"] for c in saved} == {a.user_id}
