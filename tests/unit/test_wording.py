"""Counts in words agree with their number."""

from __future__ import annotations

from core.batches.states import shown_state
from core.store.schema import utcnow
from core.wording import counted


def test_one_is_singular_and_every_other_number_is_plural() -> None:
    """1 item, 0 items, 2 items, 1,000 entries; the last word of a phrase takes the plural."""
    assert [counted(1, "item"), counted(0, "item"), counted(2, "item")] == ["1 item", "0 items", "2 items"]
    assert counted(1000, "entry") == "1,000 entries"
    assert counted(3, "failed batch") == "3 failed batches"


def test_a_stopped_batch_with_one_item_left_says_1_item() -> None:
    """The shown reason of a batch stopped with one item left says "1 item not started", never "1 items"."""
    _, reason = shown_state("failed", "stopped: key rejected. Set the key.", {"pending": 1}, interrupted=False,
                            pause_kind=None, now=utcnow())
    assert reason == "stopped: key rejected; 1 item not started. Set the key."
