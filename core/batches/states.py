"""Batch and item states, the one table of allowed batch transitions, and the state a person is shown.

The stored state says what the worker did; the shown state (`shown_state`) is derived from it
and the item counts of the same read, so it never contradicts the numbers beside it: a
"failed" batch with no failed item was stopped (a rejected key, a spend limit) and shows as
"stopped: key rejected; 20 items not started".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.errors import ErrorCode, ValidationError
from core.wording import counted

__all__ = [
    "ACTIVE",
    "BATCH_MODES",
    "BATCH_STATES",
    "BUDGET_PAUSE_PREFIX",
    "BREAKER_PAUSE_REASON",
    "ITEM_STATES",
    "STOPPED_PREFIX",
    "TERMINAL",
    "breaker_pause_reason",
    "budget_pause_reason",
    "check_transition",
    "is_interrupted",
    "next_try_in_s",
    "shown_state",
]

# how a batch's items reach the model: one call each (online), or in Message Batches at the batch discount
BATCH_MODES = ("online", "message_batches")
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


# what a batch the worker stopped at once (an error every item would hit) has as its reason:
# STOPPED_PREFIX, a few words ("key rejected"), ". ", then what to do
STOPPED_PREFIX = "stopped: "
BREAKER_PAUSE_REASON = "model service failing; waiting for the circuit breaker"
_NEXT_TRY = "; next try at "


def breaker_pause_reason(next_try_at: datetime) -> str:
    """The reason of a batch the open breaker paused, with when the worker tries again."""
    return f"{BREAKER_PAUSE_REASON}{_NEXT_TRY}{next_try_at.isoformat()}"


# a batch its spend cap paused (pause_kind "budget"): "budget reached: $X of $Y"
BUDGET_PAUSE_PREFIX = "budget reached: "


def budget_pause_reason(spent_usd: float, budget_usd: float) -> str:
    """The reason of a batch the spend cap paused: committed plus in-flight estimated cost, of the budget."""
    return (f"{BUDGET_PAUSE_PREFIX}${spent_usd:,.2f} of ${budget_usd:,.2f} (committed plus in-flight estimate); "
            "raise the budget and resume it")


def next_try_in_s(reason: str | None, now: datetime) -> int | None:
    """Seconds until the worker tries a breaker-paused batch again (0 when due), None if the reason does not say."""
    if not reason or not reason.startswith(BREAKER_PAUSE_REASON + _NEXT_TRY):
        return None
    try:
        at = datetime.fromisoformat(reason[len(BREAKER_PAUSE_REASON + _NEXT_TRY):])
    except ValueError:
        return None
    return max(0, round((at - now).total_seconds()))


def is_interrupted(status: str, lease_expires_at: datetime | None, last_item_change: datetime | None,
                   now: datetime) -> bool:
    """Running, its lease run out (or never taken), and no item changed since: its worker is gone.

    A dead worker changes nothing after its lease ran out; a busy one whose heartbeat is late
    still commits items, and that is progress, not an interruption.
    """
    if status != "running":
        return False
    if lease_expires_at is None:
        return True
    return lease_expires_at < now and (last_item_change is None or last_item_change <= lease_expires_at)


def shown_state(status: str, reason: str | None, counts: Mapping[str, int], *, interrupted: bool,
                pause_kind: str | None, now: datetime) -> tuple[str, str | None]:
    """(state, reason) as a person should read them, from the stored state and the item counts."""
    left = int(counts.get("pending", 0)) + int(counts.get("running", 0))
    if interrupted:
        return "interrupted", (f"the worker stopped with {counted(left, 'item')} left; a running worker picks "
                               "it up by itself, or resume it")
    if status == "paused" and pause_kind == "breaker":
        wait = next_try_in_s(reason, now)
        when = "next try due now" if wait == 0 else (f"next try in {wait} s" if wait is not None else
                                                     "it continues when the service recovers")
        return "paused automatically", f"paused automatically — the model service is failing; {when}; no action needed"
    if status == "failed" and not counts.get("failed"):
        # nothing failed: the worker stopped the batch (older rows have no short cause before their reason)
        what, rest = "", reason or ""
        if rest.startswith(STOPPED_PREFIX):
            what, _, rest = rest[len(STOPPED_PREFIX):].partition(". ")
        cause = f"stopped: {what}; " if what else "stopped; "
        return "stopped", f"{cause}{counted(left, 'item')} not started. {rest}".strip()
    return status, reason
