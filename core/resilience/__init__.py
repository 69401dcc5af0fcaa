"""Resilience for calls that leave the process: retry policies, circuit breakers, rate limiting.

Calls to the model go rate limiter -> circuit breaker -> retry policy -> SDK; store
operations go through `run_db` (the "database" breaker and a transient-error retry policy).
The names below are the whole public surface; the private modules hold the pieces.
"""

from core.resilience._breaker import (
    CircuitBreaker,
    CircuitOpenError,
    ClaudeCircuitOpenError,
    DatabaseCircuitOpenError,
    all_breakers,
    counts_as_failure,
    get_breaker,
    reset_breakers,
)
from core.resilience._db import outlast_store_outage, run_db, run_db_past_breaker
from core.resilience._limiter import RateLimiter, get_rate_limiter, reset_rate_limiters
from core.resilience._retry import async_retry_policy, is_retryable, is_store_unavailable

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "ClaudeCircuitOpenError",
    "DatabaseCircuitOpenError",
    "RateLimiter",
    "all_breakers",
    "async_retry_policy",
    "counts_as_failure",
    "get_breaker",
    "get_rate_limiter",
    "is_retryable",
    "is_store_unavailable",
    "outlast_store_outage",
    "reset_breakers",
    "reset_rate_limiters",
    "run_db",
    "run_db_past_breaker",
]
