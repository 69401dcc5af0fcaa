"""How a batch covers its grid: items and done items per persona x emotion x topic cell, per edge case, per value.

Counted by the database from the items' params (one grouped query, the same SQL on both engines
through SQLAlchemy's JSON paths), so a batch of 100,000 items returns a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth.actor import current_actor
from core.auth.permissions import Action, Kind, require
from core.errors import ErrorCode, NotFoundError
from core.store.schema import batch_items, batch_jobs

__all__ = ["Coverage", "batch_coverage"]


@dataclass(frozen=True)
class Coverage:
    """Counts of one batch: `cells` by (persona, emotion, topic), `edge_cases` and `variables` (custom) by value.

    Each count is (items, done).
    """

    cells: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    edge_cases: dict[str, tuple[int, int]] = field(default_factory=dict)
    variables: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    @property
    def thinnest(self) -> int:
        return min((n for n, _d in self.cells.values()), default=0)


def _add(table: dict[Any, tuple[int, int]], key: Any, n: int, done: int) -> None:
    items, finished = table.get(key, (0, 0))
    table[key] = (items + n, finished + done)


def batch_coverage(engine: Engine, batch_id: str) -> Coverage:
    """The coverage of `batch_id` (NotFoundError if the actor may not see it)."""
    params = batch_items.c.params
    with engine.connect() as conn:
        row = conn.execute(sa.select(batch_jobs.c.owner_id, batch_jobs.c.config)
                           .where(batch_jobs.c.id == batch_id)).first()
        missing = f"There is no batch with id {batch_id[:40]!r}."
        if row is None:
            raise NotFoundError(missing, code=ErrorCode.UNKNOWN_BATCH, field="batch_id", user_message=missing)
        require(current_actor(engine), Action.VIEW, Kind.BATCH, row.owner_id, missing=missing,
                code=ErrorCode.UNKNOWN_BATCH, field="batch_id")
        custom = list((row.config or {}).get("variables") or {})
        columns = [params["persona"].as_string(), params["emotion"].as_string(), params["topic"].as_string(),
                   params["edge_case"].as_string(), *(params[("variables", name)].as_string() for name in custom)]
        done = sa.func.sum(sa.case((batch_items.c.status == "done", 1), else_=0))
        rows = conn.execute(sa.select(*columns, sa.func.count(), done)
                            .where(batch_items.c.batch_id == batch_id).group_by(*columns)).all()
    coverage = Coverage()
    for r in rows:
        persona, emotion, topic, edge, *values = r[:len(columns)]
        n, finished = int(r[-2]), int(r[-1] or 0)
        _add(coverage.cells, (persona or "", emotion or "", topic or ""), n, finished)
        if edge is not None:
            _add(coverage.edge_cases, edge, n, finished)
        for name, value in zip(custom, values, strict=True):
            _add(coverage.variables.setdefault(name, {}), value or "", n, finished)
    return coverage
