"""The spend cap of a batch, in both modes, and the price of a reply in each mode.

A batch may carry `budget_usd`. Before the worker starts more items (online: claims them;
Message Batches: submits them) it asks `room`: how many more fit under the cap when the cost
already committed (the batch's ledger, `batch_jobs.cost_usd`) plus the estimated cost of the
items in flight (running, in either mode) plus theirs stays within the budget. None fit: the
worker pauses the batch (pause_kind "budget", reason "budget reached: $X of $Y"), and items in
flight still finish and are kept. Resume after raising the budget (service.set_budget) continues.

An item's estimated cost is the mean cost of the batch's items done so far, or before the first
one the static estimate of the batch's template at its model (core.batches.service.estimate),
each at the price of the batch's mode (core.llm.pricing.price: Message Batches at the batch share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth.actor import system_actor
from core.errors import AppError
from core.store.schema import batch_items, batch_jobs
from core.store.tx import read_conn

__all__ = ["Room", "room"]

@dataclass(frozen=True)
class Room:
    """How many more items a batch's budget allows now, and the figures it was worked out from."""

    items: int  # more items that may be started (a large number when the estimate is 0)
    budget_usd: float
    committed_usd: float
    in_flight_usd: float  # estimated cost of the items in flight
    per_item_usd: float
    pending: int

    @property
    def spent_usd(self) -> float:
        """Committed plus the in-flight estimate: what "budget reached: $X" shows."""
        return self.committed_usd + self.in_flight_usd


def _static_estimate(template: str, model: str, turns: int | None, mode: str) -> float:
    from core.batches.service import estimate  # the service imports this package's worker

    try:
        est = estimate(template, 1, model, turns=turns)
    except AppError:  # the template is gone: only what is committed counts
        return 0.0
    return float(est["batch_cost_usd"] if mode == "message_batches" else est["cost_usd"])


def room(engine: Engine, batch_id: str) -> Room | None:
    """The room the budget of `batch_id` leaves now; None when the batch has no budget."""
    with read_conn(engine, actor=system_actor()) as conn:
        row = conn.execute(sa.select(batch_jobs.c.budget_usd, batch_jobs.c.cost_usd, batch_jobs.c.mode,
                                     batch_jobs.c.template, batch_jobs.c.model, batch_jobs.c.config)
                           .where(batch_jobs.c.id == batch_id)).first()
        if row is None or row.budget_usd is None:
            return None
        counts: dict[str, int] = dict(conn.execute(sa.select(batch_items.c.status, sa.func.count()).where(
            batch_items.c.batch_id == batch_id, batch_items.c.status.in_(("done", "running", "pending")))
            .group_by(batch_items.c.status)).all())
    committed = float(row.cost_usd or 0.0)
    done, running, pending = (int(counts.get(k, 0)) for k in ("done", "running", "pending"))
    per_item = committed / done if done else _static_estimate(
        row.template, row.model, (row.config or {}).get("turns"), row.mode)
    in_flight = running * per_item
    left = float(row.budget_usd) - committed - in_flight
    if left <= 0:
        items = 0
    elif per_item <= 0:
        items = pending
    else:
        items = min(pending, math.floor(left / per_item + 1e-9))
    return Room(items=items, budget_usd=float(row.budget_usd), committed_usd=committed, in_flight_usd=in_flight,
                per_item_usd=per_item, pending=pending)
