"""`python -m core review list | accept | reject` on both engines, and a bulk accept killed mid-way and resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import sqlalchemy as sa
from audit_support import audit_rows
from batch_support import wait_for
from cli_runner import run_cli
from people import cast
from review_support import batch, decisions, reviewed, stored

from core.auth import acting_as, system_actor
from core.auth.audit import AuditAction
from core.config import ROOT
from core.review import OPERATION_TYPE
from core.store.schema import conversations, recovery_checkpoints
from core.store.tx import read_conn

REVIEWER = {"STUDIO_USER": "r@example.com"}


def test_review_list_json_names_each_conversations_status_score_failed_checks_and_duplicate(engine):
    """--json: a list of objects, oldest first, with exactly the documented fields."""
    people = cast(engine)
    bid = batch(engine, people.a.user_id)
    first = stored(engine, people.a.user_id, 1, batch_id=bid, failed=("meta_text",), score=41)[0]
    second = stored(engine, people.a.user_id, 1, batch_id=bid, duplicate_of=first, start=1)[0]
    stored(engine, people.a.user_id, 1, status="accepted", start=2)
    run = run_cli(["review", "list", "--json"], env=REVIEWER)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [r["id"] for r in rows] == [first, second]
    assert set(rows[0]) == {"id", "status", "score", "checks", "duplicate_of", "batch_id", "created_at"}
    assert (rows[0]["status"], rows[0]["score"], rows[0]["checks"], rows[0]["duplicate_of"]) == (
        "needs_review", 41, ["meta_text"], None)
    assert rows[1]["duplicate_of"] == first and rows[1]["batch_id"] == bid
    every = json.loads(run_cli(["review", "list", "--status", "all", "--json"], env=REVIEWER).stdout)
    assert len(every) == 3
    plain = run_cli(["review", "list", "--batch", bid[:8]], env=REVIEWER)
    assert plain.stdout.splitlines()[0].startswith(first) and "failed meta_text" in plain.stdout
    assert "2 of 2 conversations (needs_review)" in plain.stderr


def test_review_accept_and_reject_by_id_print_how_many_and_exit_0(engine):
    """accept --ids a,b and reject --ids c, with a note: each conversation in its state, the note kept."""
    people = cast(engine)
    a, b, c = stored(engine, people.a.user_id, 3)
    run = run_cli(["review", "accept", "--ids", f"{a},{b}", "--note", "good"], env=REVIEWER)
    assert (run.returncode, run.stdout.strip()) == (0, "accepted 2 conversations"), run.stderr
    run = run_cli(["review", "reject", "--ids", c], env=REVIEWER)
    assert (run.returncode, run.stdout.strip()) == (0, "rejected 1 conversation")
    assert [reviewed(engine, i)["review_status"] for i in (a, b, c)] == ["accepted", "accepted", "rejected"]
    assert reviewed(engine, a)["review_note"] == "good"


def test_review_by_an_analyst_or_of_an_unknown_id_is_not_found_and_bad_arguments_exit_2(engine):
    """An analyst's accept answers not found (exit 1), as an unknown id does; no ids or both forms exit 2."""
    people = cast(engine)
    cid = stored(engine, people.a.user_id)[0]
    analyst = run_cli(["review", "accept", "--ids", cid], env={"STUDIO_USER": "a@example.com"})
    unknown = run_cli(["review", "accept", "--ids", "nope"], env=REVIEWER)
    assert analyst.returncode == unknown.returncode == 1
    assert "no conversation" in analyst.stderr and "no conversation" in unknown.stderr
    assert json.loads(run_cli(["review", "list", "--json"], env={"STUDIO_USER": "a@example.com"}).stdout) == []
    assert run_cli(["review", "accept"], env=REVIEWER).returncode == 2
    assert run_cli(["review", "reject", "--ids", cid, "--batch", "x"], env=REVIEWER).returncode == 2
    assert run_cli(["review", "list", "--status", "maybe"], env=REVIEWER).returncode == 2
    assert run_cli(["review", "accept", "--batch", "ffffffff"], env=REVIEWER).returncode == 1
    assert reviewed(engine, cid)["review_status"] == "needs_review" and decisions(engine) == []


def _checkpoint(engine):
    cp = recovery_checkpoints.c
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(recovery_checkpoints).where(cp.operation_type == OPERATION_TYPE)
                            ).mappings().first()


def _accepted(engine) -> int:
    with acting_as(system_actor()), read_conn(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(conversations)
                            .where(conversations.c.review_status == "accepted")).scalar_one()


def test_a_bulk_accept_killed_mid_way_and_resumed_applies_every_decision_exactly_once(engine, monkeypatch):
    """kill -9 during `review accept --batch`: the checkpoint counts what was decided; the rerun decides the rest."""
    total = 4000
    people = cast(engine)
    bid = batch(engine, people.a.user_id)
    stored(engine, people.a.user_id, total, batch_id=bid)
    stored(engine, people.a.user_id, 3, start=total)  # not the batch's: never touched
    monkeypatch.setenv("STUDIO_REVIEW_BULK_CHUNK_ROWS", "10")
    monkeypatch.setenv("STUDIO_USER", "r@example.com")
    cli = [sys.executable, "-m", "core", "review", "accept", "--batch", bid, "--note", "bulk ok"]
    proc = subprocess.Popen(cli, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (_checkpoint(engine) or {}).get("completed_count", 0) >= 100, 60,
                 "the bulk accept to be under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    cp = _checkpoint(engine)
    done = _accepted(engine)
    assert 0 < done < total, "the kill came too late to interrupt it"
    assert cp["expires_at"] is None  # unfinished
    assert cp["completed_count"] == done == len(decisions(engine))  # advanced with each chunk: never ahead or behind
    assert audit_rows(engine, AuditAction.REVIEW_DECISION) == []  # the operation's row comes with its last chunk

    rerun = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"accepted {total:,} conversations of batch {bid} (resumed an interrupted run)" in rerun.stdout
    rows = decisions(engine)
    assert len(rows) == total == len({d["conversation_id"] for d in rows}) == _accepted(engine)
    assert len({d["operation_id"] for d in rows}) == 1 and {d["note"] for d in rows} == {"bulk ok"}
    assert _checkpoint(engine)["expires_at"] is not None
    [a] = audit_rows(engine, AuditAction.REVIEW_DECISION)
    assert a["detail"]["count"] == total and a["actor_id"] == people.reviewer.user_id
