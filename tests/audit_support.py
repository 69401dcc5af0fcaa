"""The audit trail in tests: the rows of one action, and an action made to fail after its audit row is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import acting_as, system_actor
from core.auth.audit import AuditAction
from core.store.schema import audit_events
from core.store.tx import read_conn

__all__ = ["audit_rows", "fail_after"]


def audit_rows(engine: Engine, action: AuditAction) -> list[dict[str, Any]]:
    """Every audit row of `action`, oldest first (read as the system: everyone's)."""
    with acting_as(system_actor()), read_conn(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(audit_events).where(audit_events.c.action == action.value)
                                              .order_by(audit_events.c.id)).mappings()]


def fail_after(audit: Callable[..., None]) -> Callable[..., None]:
    """`audit`, then a failure before the transaction commits (as if the process died there)."""

    def audit_then_fail(*args: Any, **kwargs: Any) -> None:
        audit(*args, **kwargs)
        raise RuntimeError("the process dies before the commit")

    return audit_then_fail
