"""Message Batches mode's small rules: the items' custom_ids, a create's body and the budget's pause reason."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

from core.batches.message_batches import RequestsBody, _index_of, custom_id
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


def test_a_create_body_is_the_json_of_its_requests_and_as_long_as_its_size_says():
    """One request or several, non-ASCII text included: the streamed chunks join to {"requests": [...]}, size bytes."""
    requests = [{"custom_id": f"b_{i}", "params": {"messages": [{"role": "user", "content": f"café {i} " * 9000}]}}
                for i in range(3)]  # each longer than a chunk of the stream
    for some in (requests[:1], requests):
        body = RequestsBody()
        for i, request in enumerate(some):
            encoded = json.dumps(request, ensure_ascii=False).encode()
            assert body.size_with(encoded) == body.size + len(encoded) + (1 if i else 0)
            body.add(i, encoded)
        raw = _read(body)
        assert json.loads(raw) == {"requests": some} and len(raw) == body.size and body.indexes == list(range(len(some)))


def test_a_create_body_cut_to_some_items_holds_just_their_requests():
    """The items a submission row kept (others were taken meanwhile) are the body's requests, in order."""
    body = RequestsBody()
    for i in range(4):
        body.add(i, json.dumps({"custom_id": f"b_{i}"}).encode())
    kept = body.only({1, 3})
    raw = _read(kept)
    assert json.loads(raw) == {"requests": [{"custom_id": "b_1"}, {"custom_id": "b_3"}]}
    assert len(raw) == kept.size and kept.indexes == [1, 3]


def _read(body: RequestsBody) -> bytes:
    async def _all() -> bytes:
        return b"".join([chunk async for chunk in body.chunks()])

    return asyncio.run(_all())
