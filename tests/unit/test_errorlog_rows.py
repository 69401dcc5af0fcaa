"""Row shaping: a context is stored whole exactly when its JSON fits the limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.errorlog.rows import Pending, build_row, fallback_row, json_safe
from core.errors import APIError

LIMIT = 200


def _row_context(context: dict) -> dict | None:
    err = APIError("boom", code="server_error")
    pending = Pending(1, "0" * 32, datetime.now(UTC), err, err, "test", context, None, None, None, "ana", None,
                      "error", False, "test")
    return build_row(pending, text_limit=10_000, context_limit=LIMIT)["context"]


@pytest.mark.parametrize("context", [
    {"model": "claude-sonnet-5-5", "batch_item": 17, "ok": True, "ratio": 0.25, "none": None},
    {"k": "x" * 150},  # under the limit
    {"k": "x" * 300},  # over it
    {"k": "\x01" * 30},  # 30 characters, 180 once escaped
    {"k": "\x01" * 40},  # 40 characters, 240 once escaped: over
    {"big": 10**190},  # an int with 191 digits: fits, measured
    {"big": 10**200},  # 201 digits: over
    {f"key{i}": i for i in range(40)},  # many small items
    {"nested": {"a": "y" * 120}, "b": [1, 2, 3]},
])
def test_context_is_whole_exactly_when_its_json_fits(context):
    """The shortcut that skips measuring small contexts agrees with measuring them, on each side of the limit."""
    reference = json_safe(context, LIMIT)
    fits = len(json.dumps(reference, ensure_ascii=False, separators=(",", ":"))) <= LIMIT
    stored = _row_context(context)
    if fits:
        assert stored == reference
    else:
        assert stored["_truncated"] is True and stored["_chars"] > LIMIT


def test_small_context_keeps_every_value_and_redacts_secret_keys():
    stored = _row_context({"model": "m", "api_key": "sk-ant-api03-" + "a" * 40, "turns": 6})
    assert stored["model"] == "m" and stored["turns"] == 6
    assert "sk-ant" not in json.dumps(stored)


def test_a_row_that_cannot_be_built_is_still_its_persons():
    """The fallback row keeps the acting person's id (it is theirs to see, not everyone's), and no message detail."""
    err = APIError("a's secret prompt", code="server_error")
    owner = "3f1c0e52-8a43-4b53-9a57-6b7d1d7a0c11"
    pending = Pending(1, "0" * 32, datetime.now(UTC), err, err, "test", None, None, None, None, owner, None,
                      "error", False, "test")
    row = fallback_row(pending, ValueError("unserialisable"))
    assert row["user_id"] == owner and "secret" not in row["message"]
