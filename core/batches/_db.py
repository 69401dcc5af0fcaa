"""Store writes of batches and drafts go through the resilience layer's database policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run_db", "run_db_past_breaker"]

T = TypeVar("T")


def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one whole-transaction store operation through core.resilience.run_db (breaker + retry)."""
    try:
        from core.resilience import run_db as resilient
    except ImportError:  # the resilience layer not installed yet: run it once, plainly
        return fn(*args, **kwargs)
    return resilient(fn, *args, **kwargs)


def run_db_past_breaker(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A heartbeat's write: retried like `run_db`, never refused by an open database breaker."""
    from core.resilience import run_db_past_breaker as past

    return past(fn, *args, **kwargs)
