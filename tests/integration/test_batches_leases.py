"""Leases and item claims on both engines: one owner at a time, expiry hands over, orphans return to pending."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from core.batches import leases
from core.batches.service import create_batch, pause_batch
from core.store.schema import batch_items, batch_jobs, utcnow
from core.store.tx import write_tx


def _expire(engine, batch_id: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
            lease_expires_at=utcnow() - timedelta(seconds=1)))


def _statuses(engine, batch_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(batch_items.c.status, sa.func.count()).where(
            batch_items.c.batch_id == batch_id).group_by(batch_items.c.status)).all())


def test_a_leased_batch_is_not_claimed_twice(engine):
    """The first worker takes the lease; a second finds nothing to claim but may join it."""
    bid = create_batch(engine, template="tutoring", count=5, concurrency=3)
    first = leases.claim_batch(engine, "w1")
    assert first is not None and (first.batch_id, first.status, first.concurrency) == (bid, "running", 3)
    assert leases.claim_batch(engine, "w2") is None
    joinable = leases.find_joinable_batch(engine, "w2")
    assert joinable is not None and (joinable.batch_id, joinable.concurrency) == (bid, 3)
    assert leases.find_joinable_batch(engine, "w1") is None


def test_items_are_claimed_once_lowest_index_first(engine):
    """Claims hand out pending items in order and never the same item to two workers."""
    bid = create_batch(engine, template="tutoring", count=5)
    leases.claim_batch(engine, "w1")
    a = leases.claim_items(engine, bid, "w1", 3)
    b = leases.claim_items(engine, bid, "w2", 3)
    assert [i.item_index for i in a] == [0, 1, 2] and [i.item_index for i in b] == [3, 4]
    assert leases.claim_items(engine, bid, "w3", 3) == []


def test_expired_lease_hands_the_batch_over_and_requeues_the_dead_workers_items(engine):
    """After the owner's lease expires the next worker owns the batch and the dead one's items are pending again."""
    bid = create_batch(engine, template="tutoring", count=4)
    leases.claim_batch(engine, "dead")
    leases.claim_items(engine, bid, "dead", 2)
    assert leases.renew(engine, "dead", bid, owner=True) is True
    _expire(engine, bid)
    taken = leases.claim_batch(engine, "next")
    assert taken is not None and taken.requeued == 2
    assert _statuses(engine, bid) == {"pending": 4}
    assert leases.renew(engine, "dead", bid, owner=True) is False  # the dead worker lost it for good


def test_released_lease_is_claimable_at_once_and_paused_batches_give_no_items(engine):
    """A released lease is free immediately; a user-paused batch hands out no items."""
    bid = create_batch(engine, template="tutoring", count=2)
    leases.claim_batch(engine, "w1")
    assert leases.release_lease(engine, bid, "w1") is True
    assert leases.claim_batch(engine, "w2").batch_id == bid
    pause_batch(engine, bid)
    assert leases.claim_items(engine, bid, "w2", 2) == []
    assert leases.claim_batch(engine, "w3") is None  # a user pause is not claimable


def test_a_cancel_skips_the_items_in_flight_too_so_nothing_stays_running(engine):
    """Cancel skips pending and running items alike; the worker giving its items back later changes nothing."""
    from core.batches.service import cancel_batch, get_batch_status

    bid = create_batch(engine, template="tutoring", count=3)
    leases.claim_batch(engine, "w1")
    leases.claim_items(engine, bid, "w1", 2)
    assert cancel_batch(engine, bid) == 3
    assert leases.release_items(engine, "w1") == 0
    st = get_batch_status(engine, bid)
    assert (st["state"], st["pending"], st["running"], st["skipped"]) == ("cancelled", 0, 0, 3)


def test_a_breaker_pause_outlives_its_worker_but_a_user_pause_is_not_taken(engine):
    """A breaker-paused batch whose worker died is claimed (still paused) by the next; a user-paused one is not."""
    from core.batches import checkpoints

    bid = create_batch(engine, template="tutoring", count=2)
    leases.claim_batch(engine, "dead")
    assert checkpoints.pause_for_breaker(engine, bid, "model service failing")
    assert leases.claim_batch(engine, "next") is None  # the dead worker's lease has not expired yet
    _expire(engine, bid)
    taken = leases.claim_batch(engine, "next")
    assert taken is not None and (taken.status, taken.pause_kind) == ("paused", "breaker")
    assert checkpoints.resume_after_breaker(engine, bid) is True
    pause_batch(engine, bid)
    _expire(engine, bid)
    assert leases.claim_batch(engine, "third") is None


def test_an_item_that_kills_every_worker_fails_after_the_lost_attempt_limit(engine):
    """Each worker lost while holding an item counts one lost attempt; at that limit it fails, the rest go on."""
    from core.batches.service import get_batch_status
    from core.config import override_settings

    override_settings(item_max_attempts=1, item_max_lost_attempts=3)  # deaths do not spend the item's own attempts
    bid = create_batch(engine, template="tutoring", count=2)
    for n in range(3):
        leases.claim_batch(engine, f"doomed-{n}")
        # lost once, it is a suspect: claimed apart (and run alone), never beside other items
        [poison] = leases.claim_items(engine, bid, f"doomed-{n}", 1, suspect=n > 0)
        assert poison.item_index == 0  # the same item each time: it is what kills them
        if n > 0:
            assert leases.claim_items(engine, bid, f"doomed-{n}", 2, suspect=True) == []  # one suspect at a time
        _expire(engine, bid)
    leases.claim_batch(engine, "survivor")
    with engine.connect() as conn:
        item = conn.execute(sa.select(batch_items.c.status, batch_items.c.lost_attempts, batch_items.c.attempts,
                                      batch_items.c.last_error_code)
                            .where(batch_items.c.batch_id == bid, batch_items.c.item_index == 0)).one()
        message = conn.execute(sa.select(batch_items.c.last_error)
                               .where(batch_items.c.batch_id == bid, batch_items.c.item_index == 0)).scalar_one()
    failed = get_batch_status(engine, bid)["failed"]
    assert tuple(item) == ("failed", 3, 0, "worker_lost")
    assert "crashed" in message and "3 times" in message  # what the user reads says what happened
    assert failed == 1
    assert [i.item_index for i in leases.claim_items(engine, bid, "survivor", 2)] == [1]


def test_a_late_failure_from_a_requeued_claim_changes_nothing(engine):
    """A worker that went silent and then saves its item's failure does not touch the item's new claim."""
    from core.batches.checkpoints import record_item_failure
    from core.batches.service import get_batch_status
    from core.errors import APIError

    bid = create_batch(engine, template="tutoring", count=1)
    leases.claim_batch(engine, "slow")
    [stale] = leases.claim_items(engine, bid, "slow", 1)
    _expire(engine, bid)
    assert leases.claim_batch(engine, "next").requeued == 1  # the sweep counted the silent worker's lost attempt
    [fresh] = leases.claim_items(engine, bid, "next", 1, suspect=True)  # lost once: claimed alone
    err = APIError("overloaded", code="overloaded")

    assert record_item_failure(engine, stale, err) == "superseded"
    with engine.connect() as conn:
        row = conn.execute(sa.select(batch_items.c.status, batch_items.c.claimed_by, batch_items.c.attempts,
                                     batch_items.c.lost_attempts, batch_items.c.last_error_code)
                           .where(batch_items.c.batch_id == bid)).one()
    assert tuple(row) == ("running", "next", 0, 1, None)

    assert record_item_failure(engine, fresh, err) == "pending"  # the live claim's outcome still applies
    with engine.connect() as conn:
        row = conn.execute(sa.select(batch_items.c.status, batch_items.c.attempts, batch_items.c.last_error_code)
                           .where(batch_items.c.batch_id == bid)).one()
    assert tuple(row) == ("pending", 1, "overloaded") and get_batch_status(engine, bid)["failed"] == 0
