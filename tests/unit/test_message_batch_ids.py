"""Message Batches mode's small rules: the items' custom_ids and the budget's pause reason."""

from __future__ import annotations

import re
import uuid

from core.batches.message_batches import _index_of, custom_id
from core.batches.states import budget_pause_reason

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_an_items_custom_id_is_one_the_api_accepts_even_for_the_largest_index():
    """A batch id and an index up to ten digits stay within 64 letters, digits, '-' and '_'."""
    batch_id = str(uuid.uuid4())
    for index in (0, 7, 9_999_999_999):
        assert CUSTOM_ID.match(custom_id(batch_id, index)), custom_id(batch_id, index)


def test_a_custom_id_names_its_item_only_within_its_own_batch():
    """The index comes back from its own batch's custom_id; another batch's, or a malformed one, names none."""
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert _index_of(mine, custom_id(mine, 42)) == 42
    assert _index_of(mine, custom_id(other, 42)) is None
    assert _index_of(mine, f"{mine}_x") is None and _index_of(mine, "42") is None


def test_the_budget_pause_reason_says_what_was_reached_of_what():
    """ "budget reached: $X of $Y", in dollars and cents."""
    assert budget_pause_reason(4.256, 4.0).startswith("budget reached: $4.26 of $4.00")
