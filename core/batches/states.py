"""Batch and item states, and the one table of allowed batch transitions."""

from __future__ import annotations

from core.errors import ErrorCode, ValidationError

__all__ = [
    "ACTIVE",
    "BATCH_STATES",
    "ITEM_STATES",
    "TERMINAL",
    "check_transition",
]

BATCH_STATES = ("queued", "running", "paused", "failed", "cancelled", "completed")
ITEM_STATES = ("pending", "running", "done", "failed", "skipped")
TERMINAL = frozenset({"cancelled", "completed"})
ACTIVE = frozenset({"queued", "running"})

# from -> allowed targets. "queued" is where a resume puts a batch so a worker claims it.
_ALLOWED: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "paused", "cancelled", "failed"}),
    "running": frozenset({"paused", "failed", "cancelled", "completed", "queued"}),
    "paused": frozenset({"queued", "running", "cancelled", "paused"}),
    "failed": frozenset({"queued", "cancelled"}),
    "cancelled": frozenset(),
    "completed": frozenset(),
}

_VERBS = {"queued": "resume", "paused": "pause", "cancelled": "cancel", "running": "start",
          "failed": "fail", "completed": "complete"}


def check_transition(batch_id: str, current: str, target: str) -> None:
    """Raise ValidationError with a plain message if a batch in `current` cannot move to `target`."""
    if target in _ALLOWED.get(current, frozenset()):
        return
    verb = _VERBS.get(target, target)
    if current in TERMINAL:
        hint = "it is finished; create a new batch to generate more" if current == "completed" else (
            "it was cancelled; create a new batch to generate more")
    else:
        hint = f"it is {current}"
    raise ValidationError(
        f"Cannot {verb} batch {batch_id}: {hint}.", code=ErrorCode.INVALID_TRANSITION, field="status",
        user_message=f"This batch cannot be {_past(verb)} because {hint}.")


def _past(verb: str) -> str:
    return {"resume": "resumed", "pause": "paused", "cancel": "cancelled", "start": "started",
            "fail": "failed", "complete": "completed"}.get(verb, verb)
