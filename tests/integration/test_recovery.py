"""Recovery on both engines: what stopped half-way is found with a recommended action, and cleanup counts before it removes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from core.batches.service import create_batch
from core.config import override_settings
from core.drafts import start_draft
from core.generation import GenerationParams
from core.recovery import apply_cleanup, cleanup_preview, scan
from core.store.schema import (
    batch_items,
    batch_jobs,
    conversation_drafts,
    conversations,
    error_logs,
    recovery_checkpoints,
    utcnow,
)
from core.store.tx import write_tx

PARAMS = GenerationParams(template="tutoring", persona="p", emotion="e", topic="t", turns=4)


def _batch(engine, status: str, **values) -> str:
    bid = create_batch(engine, template="tutoring", count=3)
    with write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == bid).values(status=status, **values))
    return bid


def _conversation(engine, **values) -> str:
    cid = str(uuid.uuid4())
    with write_tx(engine) as conn:
        conn.execute(conversations.insert().values(
            id=cid, template="tutoring", model="m", params={}, turns=[], turn_count=0, input_tokens=0,
            output_tokens=0, cost_usd=0.0, status="ok", created_at=utcnow(), error_count=0, is_recovering=False,
            recovery_attempts=0, **values))
    return cid


def test_scan_finds_each_kind_with_an_action(engine):
    """Interrupted, failed and paused batches, orphaned drafts and conversations are each found and explained."""
    now = utcnow()
    interrupted = _batch(engine, "running", lease_owner="host:1:dead", lease_expires_at=now - timedelta(seconds=5))
    with write_tx(engine) as conn:  # a dead worker changes none of its items after its lease ran out
        conn.execute(batch_items.update().where(batch_items.c.batch_id == interrupted).values(
            updated_at=now - timedelta(minutes=5)))
    _batch(engine, "running", lease_owner="host:2:alive", lease_expires_at=now + timedelta(seconds=60))
    failed = _batch(engine, "failed", status_reason="The Anthropic API key was rejected.")
    paused = _batch(engine, "paused", pause_kind="breaker", status_reason="model service failing")
    old_draft = start_draft(engine, PARAMS)
    start_draft(engine, PARAMS)  # fresh: not orphaned
    with write_tx(engine) as conn:
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == old_draft.id).values(
            updated_at=now - timedelta(hours=2)))
    stray = _conversation(engine, batch_id=failed, item_index=1)  # its item is still pending
    ghost = _conversation(engine, draft_id="no-such-draft")

    found = scan(engine, now)
    assert [f["id"] for f in found["interrupted_batches"]] == [interrupted]
    assert found["interrupted_batches"][0]["action"] == "resume"
    assert "stopped" in found["interrupted_batches"][0]["what_happened"]
    assert [(f["id"], f["action"]) for f in found["failed_batches"]] == [(failed, "resume")]
    assert "API key" in found["failed_batches"][0]["what_happened"]
    assert [(f["id"], f["action"]) for f in found["paused_batches"]] == [(paused, "wait")]
    assert [f["id"] for f in found["orphaned_drafts"]] == [old_draft.id]
    assert found["orphaned_drafts"][0]["action"] == "resume_draft"
    reasons = {f["id"]: f["details"]["reason"] for f in found["orphaned_conversations"]}
    assert reasons == {stray: "item_not_done", ghost: "draft_missing"}


def test_cleanup_previews_then_removes_only_what_expired(engine):
    """Cleanup reports counts first, then removes old checkpoints, expired drafts and old error logs, nothing else."""
    override_settings(checkpoint_retention_days=7, draft_ttl_hours=24, draft_grace_days=7)
    now = utcnow()
    running = _batch(engine, "running")
    with write_tx(engine) as conn:
        for kind, op_id, expires in (("batch", running, None),  # a counter copy an earlier version kept
                                     ("retention", "old", now - timedelta(hours=1)),  # finished, kept long enough
                                     ("retention", "recent", now + timedelta(days=6)),  # finished yesterday
                                     ("resolve", "unfinished", None)):  # interrupted: its resume needs it
            conn.execute(recovery_checkpoints.insert().values(
                operation_type=kind, operation_id=op_id, completed_count=0, failed_count=0, skipped_count=0,
                state={}, created_at=now, updated_at=now, expires_at=expires))
    expired = start_draft(engine, PARAMS)
    kept = start_draft(engine, PARAMS)
    done_draft = start_draft(engine, PARAMS)
    linked = _conversation(engine, draft_id=done_draft.id)
    with write_tx(engine) as conn:
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id.in_([expired.id, done_draft.id]))
                     .values(expires_at=now - timedelta(days=7, hours=1)))
        for days, severity in ((200, "error"), (40, "info"), (40, "error"), (1, "info")):
            conn.execute(error_logs.insert().values(
                error_id=uuid.uuid4().hex, created_at=now - timedelta(days=days), error_type="api",
                error_code="x", severity=severity, message="m", fingerprint="f", is_recoverable=False,
                recovered=False, resolved=False))

    preview = cleanup_preview(engine, now)
    assert preview == {"checkpoints": 2, "drafts": 2, "error_logs": 2}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(error_logs)).scalar_one() == 4
    assert apply_cleanup(engine, now) == preview
    assert cleanup_preview(engine, now) == {"checkpoints": 0, "drafts": 0, "error_logs": 0}
    with engine.connect() as conn:
        cps = {r[0] for r in conn.execute(sa.select(recovery_checkpoints.c.operation_id))}
        drafts = {r[0] for r in conn.execute(sa.select(conversation_drafts.c.id))}
        link = conn.execute(sa.select(conversations.c.draft_id).where(conversations.c.id == linked)).scalar_one()
        items = conn.execute(sa.select(sa.func.count()).select_from(batch_items)).scalar_one()
    assert cps == {"recent", "unfinished", "error_logs"}  # the retention just applied keeps its record
    assert drafts == {kept.id}
    assert link is None  # the conversation stays, unlinked from its removed draft
    assert items == 3  # batches and their items are never removed by cleanup


def _expired_draft(engine) -> str:
    draft = start_draft(engine, PARAMS)
    with write_tx(engine) as conn:
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == draft.id)
                     .values(expires_at=utcnow() - timedelta(days=30)))
    return draft.id


def test_cli_counts_before_it_removes(engine, capsys):
    """`recovery cleanup` only counts; `--apply` removes; `recovery scan --json` lists findings by kind."""
    import json

    from core.__main__ import main as cli

    _expired_draft(engine)
    assert cli(["recovery", "cleanup"]) == 0
    assert "would remove: 0 checkpoints, 1 drafts" in capsys.readouterr().out
    assert cli(["recovery", "cleanup", "--apply"]) == 0
    assert "removed: 0 checkpoints, 1 drafts" in capsys.readouterr().out
    assert cleanup_preview(engine)["drafts"] == 0
    assert cli(["recovery", "scan", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {
        "interrupted_batches", "failed_batches", "paused_batches", "orphaned_drafts", "orphaned_conversations"}


def test_workers_run_the_cleanup_job_on_their_interval(engine):
    """A worker runs the cleanup once its interval has passed, removing expired drafts."""
    import asyncio

    from core.batches.worker import BatchWorker

    override_settings(cleanup_interval_s=0.01)
    _expired_draft(engine)
    worker = BatchWorker(engine)
    worker._last_cleanup -= 1.0  # as if it had been running a while
    assert asyncio.run(worker.run(once=True)) == 0
    assert worker.stats.last_cleanup is not None and worker.stats.last_cleanup["drafts"] == 1
    assert cleanup_preview(engine)["drafts"] == 0


def test_a_done_item_naming_another_conversation_is_found_by_the_deep_scan(engine):
    """An item marked done that points at another conversation than its own shows in the deep scan only."""
    bid = _batch(engine, "completed")
    cid = _conversation(engine, batch_id=bid, item_index=0)
    with write_tx(engine) as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid, batch_items.c.item_index == 0)
                     .values(status="done", conversation_id=str(uuid.uuid4())))
    assert scan(engine)["orphaned_conversations"] == []
    found = scan(engine, deep=True)["orphaned_conversations"]
    assert [(f["id"], f["details"]["reason"]) for f in found] == [(cid, "item_not_done")]
    assert "points at another conversation" in found[0]["what_happened"]


def test_the_pages_checks_search_indexes_and_scan_no_table(tmp_path):
    """Every query of the Recovery page's scan reads an index (SQLite's plan has no full SCAN of a table)."""
    from core.store import create_store_engine, migrate

    sqlite = create_store_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(sqlite, force=True)
    for _ in range(20):
        _conversation(sqlite, draft_id=str(uuid.uuid4()))
    statements: list[tuple[str, object]] = []

    @sa.event.listens_for(sqlite, "before_cursor_execute")
    def _keep(_conn, _cursor, statement, params, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    scan(sqlite)
    sa.event.remove(sqlite, "before_cursor_execute", _keep)
    assert len(statements) >= 7  # three batch lists, open drafts, three conversation checks
    with sqlite.connect() as conn:
        plans = {s: [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)] for s, p in statements}
    full_scans = {s.split("FROM")[1][:60]: steps for s, steps in plans.items()
                  if any(step.startswith("SCAN") for step in steps)}
    assert full_scans == {}
    sqlite.dispose()


def test_the_conversation_checks_page_as_one_list_with_one_total(engine):
    """3 items not done, 2 of deleted batches, 2 of missing drafts, 3 a page: pages 3, 3, 1 in that order; 7 in all."""
    from core.recovery import orphaned_conversations_page

    bid = _batch(engine, "failed")
    not_done = {_conversation(engine, batch_id=bid, item_index=k) for k in range(3)}  # its items are pending
    deleted = {_conversation(engine, item_index=k) for k in range(2)}
    missing = {_conversation(engine, draft_id=str(uuid.uuid4())) for _ in range(2)}
    pages = [orphaned_conversations_page(engine, page=p, page_size=3) for p in (1, 2, 3)]
    assert [(p.total, p.pages, len(p.rows)) for p in pages] == [(7, 3, 3), (7, 3, 3), (7, 3, 1)]
    reasons = [f["details"]["reason"] for p in pages for f in p.rows]
    assert reasons == ["item_not_done"] * 3 + ["batch_deleted"] * 2 + ["draft_missing"] * 2
    assert {f["id"] for p in pages for f in p.rows} == not_done | deleted | missing
    only = orphaned_conversations_page(engine, ("draft_missing",), page_size=3)
    assert only.total == 2 and {f["id"] for f in only.rows} == missing
    assert orphaned_conversations_page(engine, page=4, page_size=3).rows == []


def test_stopped_batches_page_in_kind_order_and_home_counts_them_all(engine):
    """Failed then paused batches are one paged list; needs_attention counts every one, not a page of them."""
    from core.recovery import needs_attention, stopped_batches_page, summary

    failed = {_batch(engine, "failed", status_reason="key rejected") for _ in range(4)}
    paused = {_batch(engine, "paused", pause_kind="user") for _ in range(3)}
    first, second, third = (stopped_batches_page(engine, page=p, page_size=3) for p in (1, 2, 3))
    assert (first.total, first.pages) == (7, 3)
    assert [f["kind"] for f in first.rows + second.rows + third.rows] == ["failed_batch"] * 4 + ["paused_batch"] * 3
    assert {f["id"] for f in first.rows + second.rows + third.rows} == failed | paused
    assert stopped_batches_page(engine, ("paused_batches",), page_size=2).total == 3
    assert needs_attention(engine) == {"interrupted_batches": 0, "failed_batches": 4, "paused_batches": 3,
                                       "orphaned_drafts": 0}
    assert summary(engine)["orphaned_conversations"] == 0


def test_orphaned_drafts_are_counted_beyond_a_page(engine):
    """Five drafts left open, two a page: three pages, five in all, latest saved first."""
    from core.recovery import orphaned_drafts_page

    now = utcnow()
    ids = []
    for k in range(5):
        draft = start_draft(engine, PARAMS)
        with write_tx(engine) as conn:
            conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == draft.id).values(
                updated_at=now - timedelta(hours=2, minutes=k)))
        ids.append(draft.id)
    pages = [orphaned_drafts_page(engine, page=p, page_size=2, now=now) for p in (1, 2, 3)]
    assert [(p.total, len(p.rows)) for p in pages] == [(5, 2), (5, 2), (5, 1)]
    assert [f["id"] for p in pages for f in p.rows] == ids


def test_the_scan_command_counts_every_finding_beyond_what_it_lists(engine, capsys):
    """With lists cut at 2 rows, three conversations out of step print as "3 (the first 2 listed)"."""
    from core.__main__ import main as cli

    override_settings(list_max_rows=2)
    for _ in range(3):
        _conversation(engine, draft_id=str(uuid.uuid4()))
    assert cli(["recovery", "scan"]) == 0
    assert "orphaned conversations: 3 (the first 2 listed)" in capsys.readouterr().out
