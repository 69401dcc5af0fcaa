"""Status reasons, item errors and draft errors reach the store redacted, and cut only after."""

from __future__ import annotations

import sqlalchemy as sa
from redaction_cases import ANTHROPIC_KEY

from core.batches import leases
from core.batches.checkpoints import fail_batch, record_item_failure
from core.batches.service import create_batch, pause_batch
from core.config import get_settings
from core.drafts.session import get_draft, start_draft
from core.errors import APIError
from core.generation.service import GenerationParams
from core.redact import REDACTED
from core.store.schema import batch_items, batch_jobs
from core.store.tx import write_tx


def _reason(engine, bid: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(batch_jobs.c.status_reason).where(batch_jobs.c.id == bid)).scalar_one()


def test_a_batch_status_reason_is_stored_redacted_whoever_writes_it(engine):
    """A failed batch's reason and a pause reason typed by a person lose the secrets they carry."""
    bid = create_batch(engine, template="tutoring", count=1)
    pause_batch(engine, bid, reason="paused: password=hunter2xy leaked in the prompt")
    assert _reason(engine, bid) == f"paused: password={REDACTED} leaked in the prompt"
    leases.claim_batch(engine, "w1")
    fail_batch(engine, bid, f"The API key was rejected: {ANTHROPIC_KEY}")
    assert ANTHROPIC_KEY not in _reason(engine, bid) and REDACTED in _reason(engine, bid)


def test_an_items_last_error_is_redacted_before_it_is_cut(engine):
    """A long upstream error with a key across the cut point stores neither the key nor its tail."""
    bid = create_batch(engine, template="tutoring", count=1)
    leases.claim_batch(engine, "w1")
    [item] = leases.claim_items(engine, bid, "w1", 1)
    limit = get_settings().stored_reason_max_chars
    message = "x" * (limit - 30) + f" {ANTHROPIC_KEY} trailing words"  # the old cut landed 30 characters in
    record_item_failure(engine, item, APIError(message, code="bad_request", recoverable=False))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(batch_items.c.last_error).where(batch_items.c.batch_id == bid)).scalar_one()
    assert ANTHROPIC_KEY[:30] not in stored and ANTHROPIC_KEY[30:] not in stored and ANTHROPIC_KEY[-12:] not in stored
    assert REDACTED in stored and len(stored) <= limit + 40


def test_a_direct_write_of_an_item_error_is_redacted_too(engine):
    """The column itself redacts: a write that forgets to redact stores no secret."""
    bid = create_batch(engine, template="tutoring", count=1)
    with write_tx(engine) as conn:
        conn.execute(batch_items.update().where(batch_items.c.batch_id == bid).values(
            last_error="connect postgresql://svc:Sup3rS3cret@db/app failed\x00"))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(batch_items.c.last_error).where(batch_items.c.batch_id == bid)).scalar_one()
    assert stored == f"connect postgresql://svc:{REDACTED}@db/app failed"


def test_a_draft_error_message_is_stored_and_shown_redacted(engine):
    """A failed draft keeps the reason it stopped without the secret in it, in memory and in the store."""
    from core.drafts.session import DRAFT_KEPT

    draft = start_draft(engine, GenerationParams(template="tutoring", persona="p", emotion="e", topic="t", turns=4))
    draft.fail(APIError("401", code="authentication_failed", user_message=f"The key {ANTHROPIC_KEY} was refused."))
    assert ANTHROPIC_KEY not in draft.error_message
    stored = get_draft(engine, draft.id)["error_message"]
    assert stored == f"The key {REDACTED} was refused. {DRAFT_KEPT}"


def test_the_reason_a_batch_failed_is_redacted_before_its_message_is_cut():
    """A rejected key's message cut at 300 characters inside a URL password keeps no part of it."""
    from core.batches.worker import _fatal_reason

    message = "x" * 270 + " postgresql://svc:LongPassword1234567@db/app"  # the old cut fell inside the password
    reason = _fatal_reason(APIError(message, code="authentication_failed", recoverable=False))
    assert "LongPass" not in reason and "svc:" in reason
