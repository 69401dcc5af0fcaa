"""The values a filter can offer as choices, read cheaply at any table size."""

from __future__ import annotations

from sqlalchemy import Engine, select

from core.store.schema import error_logs

__all__ = ["recent_components"]

_RECENT_ROWS = 20_000


def recent_components(engine: Engine, *, rows: int = _RECENT_ROWS) -> list[str]:
    """The components named by the newest `rows` errors, sorted: a primary-key range, not a table scan."""
    recent = select(error_logs.c.component).order_by(error_logs.c.id.desc()).limit(rows).subquery()
    with engine.connect() as conn:
        values = conn.execute(select(recent.c.component).group_by(recent.c.component)).scalars().all()
    return sorted(v for v in values if v)
