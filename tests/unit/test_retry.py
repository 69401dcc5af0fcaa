"""Retry policy: which errors are retried, how long it waits, and how many times."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import anthropic
import httpx2
import pytest
import tenacity
from sqlalchemy import exc as sa_exc

from core.config import override_settings
from core.errors import APIError, ValidationError
from core.resilience import CircuitOpenError, async_retry_policy, is_retryable
from core.resilience._retry import db_retry_policy, full_jitter_backoff

REQUEST = httpx2.Request("POST", "http://model.invalid/v1/messages")


def status_error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    """An SDK status error shaped like the real service's answer."""
    body = {"type": "error", "error": {"type": "api_error", "message": message}}
    response = httpx2.Response(status, request=REQUEST, headers=headers or {}, json=body)
    return anthropic.APIStatusError(message, response=response, body=body)


class Flaky:
    """Fails with the given errors in turn, then returns "ok"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def retried(fn: Flaky, policy: tenacity.AsyncRetrying | None = None, *, sleeps: list[float] | None = None,
            **options: Any) -> str:
    """Run `fn` under the model-call policy (built from `options` unless given), its waits noted in `sleeps`."""
    noted = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        noted.append(seconds)

    async def attempt() -> str:
        return fn()

    return asyncio.run((policy or async_retry_policy(sleep=sleep, **options))(attempt))


def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    """Each wait lies in [0, min(cap, base * 2**(attempt-1))] and spans that range."""
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(32.0, 1.0 * 2 ** (attempt - 1))
        draws = [full_jitter_backoff(attempt, 1.0, 32.0, rng.random) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # jitter uses the whole range, not a fixed fraction
        assert min(draws) < 0.2 * ceiling


def test_backoff_is_capped_even_for_huge_attempt_numbers() -> None:
    """A very late attempt waits at most the cap and does not overflow."""
    assert full_jitter_backoff(5000, 1.0, 32.0, lambda: 1.0) == 32.0
    assert full_jitter_backoff(3, 1.0, 32.0, lambda: 1.0) == 4.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retried_up_to_the_limit(status: int) -> None:
    """A transient status is tried settings.retry_max_attempts times, then raised classified."""
    fn = Flaky(*[_classified(status_error(status)) for _ in range(10)])
    with pytest.raises(APIError) as info:
        retried(fn)
    assert fn.calls == 4
    assert info.value.status_code == status


def _classified(exc: BaseException) -> APIError:
    from core.errors import classify

    err = classify(exc)
    assert isinstance(err, APIError)
    return err


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_tried_once(status: int) -> None:
    """A 4xx that retrying cannot fix is raised after a single attempt."""
    fn = Flaky(_classified(status_error(status)))
    with pytest.raises(APIError):
        retried(fn)
    assert fn.calls == 1


def test_spend_limit_429_is_not_retried() -> None:
    """A 429 that says the spend limit is reached is final, unlike a rate-limit 429."""
    err = _classified(status_error(429, "You have reached your specified workspace API usage limits; spend limit"))
    assert err.code == "spend_limit"
    fn = Flaky(err)
    with pytest.raises(APIError):
        retried(fn)
    assert fn.calls == 1


@pytest.mark.parametrize("exc", [
    anthropic.APIConnectionError(request=REQUEST),
    anthropic.APITimeoutError(request=REQUEST),
    ConnectionResetError("peer reset"),
    TimeoutError("read timed out"),
])
def test_connection_and_timeout_errors_are_retried(exc: BaseException) -> None:
    """Network failures are retried, and a later success is returned."""
    fn = Flaky(exc, exc)
    assert retried(fn) == "ok"
    assert fn.calls == 3


def test_open_circuit_is_not_retried() -> None:
    """An open breaker is final for the call: the caller decides to pause, not the policy."""
    err = CircuitOpenError("claude", 12.0)
    assert err.is_recoverable and not is_retryable(err)
    fn = Flaky(err)
    with pytest.raises(CircuitOpenError):
        retried(fn)
    assert fn.calls == 1


def test_unknown_exceptions_are_classified_and_not_retried() -> None:
    """A plain bug (KeyError) is classified as internal and raised after one attempt."""
    fn = Flaky(KeyError("x"))
    with pytest.raises(KeyError):
        retried(fn)
    assert fn.calls == 1


def test_retry_after_sets_a_floor_under_the_backoff() -> None:
    """Every wait is at least what retry-after asked for, even when the jitter draws less."""
    override_settings(retry_instant=False)
    sleeps: list[float] = []
    errs = [_classified(status_error(429, headers={"retry-after": "7"})) for _ in range(3)]
    fn = Flaky(*errs)
    assert retried(fn, sleeps=sleeps) == "ok"
    assert len(sleeps) == 3
    assert all(7.0 <= s <= 32.0 for s in sleeps)


def test_retry_after_ms_is_read_and_capped() -> None:
    """retry-after-ms is honoured in milliseconds, and a huge retry-after is cut to the cap."""
    override_settings(retry_instant=False, retry_backoff_base_s=0.0, retry_backoff_cap_s=0.0, retry_after_cap_s=9.0)
    sleeps: list[float] = []
    fn = Flaky(_classified(status_error(529, headers={"retry-after-ms": "1500"})),
               _classified(status_error(503, headers={"retry-after": "3600"})))
    retried(fn, sleeps=sleeps)
    assert sleeps == [1.5, 9.0]


def test_backoff_without_retry_after_stays_under_the_cap() -> None:
    """Without retry-after the waits follow the configured base and cap."""
    override_settings(retry_instant=False, retry_backoff_base_s=0.5, retry_backoff_cap_s=1.0, retry_max_attempts=6)
    sleeps: list[float] = []
    fn = Flaky(*[_classified(status_error(500)) for _ in range(5)])
    retried(fn, sleeps=sleeps)
    assert len(sleeps) == 5
    assert sleeps[0] <= 0.5 and all(0.0 <= s <= 1.0 for s in sleeps)


def test_instant_mode_sleeps_zero_even_with_retry_after() -> None:
    """With retry_instant every wait is zero, retry-after included."""
    sleeps: list[float] = []
    fn = Flaky(_classified(status_error(429, headers={"retry-after": "5"})), _classified(status_error(500)))
    assert retried(fn, sleeps=sleeps) == "ok"
    assert sleeps == [0.0, 0.0]


def test_instant_mode_can_opt_in_to_real_retry_after() -> None:
    """The opt-in keeps retry-after waits real in instant mode, backoff still zero."""
    sleeps: list[float] = []
    fn = Flaky(_classified(status_error(429, headers={"retry-after": "2"})), _classified(status_error(500)))
    retried(fn, sleeps=sleeps, honour_retry_after_when_instant=True)
    assert sleeps == [2.0, 0.0]
    override_settings(retry_after_when_instant=True)
    sleeps.clear()
    retried(Flaky(_classified(status_error(429, headers={"retry-after": "2"}))), sleeps=sleeps)
    assert sleeps == [2.0]


def test_on_retry_sees_each_retried_attempt() -> None:
    """on_retry runs once per failed attempt that will be retried, with its attempt number."""
    seen: list[int] = []
    fn = Flaky(_classified(status_error(503)), _classified(status_error(503)))
    retried(fn, on_retry=lambda state: seen.append(state.attempt_number))
    assert seen == [1, 2]


def test_settings_are_read_when_the_policy_runs() -> None:
    """A policy built before a settings change obeys the new attempt limit."""
    policy = async_retry_policy()
    override_settings(retry_max_attempts=2)
    fn = Flaky(*[_classified(status_error(500)) for _ in range(5)])
    with pytest.raises(APIError):
        retried(fn, policy)
    assert fn.calls == 2


def test_explicit_max_attempts_wins() -> None:
    """max_attempts given to the policy overrides the setting."""
    fn = Flaky(*[_classified(status_error(500)) for _ in range(5)])
    with pytest.raises(APIError):
        retried(fn, max_attempts=1)
    assert fn.calls == 1


def test_async_policy_retries_and_sleeps_asynchronously() -> None:
    """The asyncio policy retries transient errors and awaits its (zero) waits."""
    sleeps: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise _classified(status_error(529))
        return "ok"

    async def main() -> str:
        return await async_retry_policy(sleep=sleep)(flaky)

    assert asyncio.run(main()) == "ok"
    assert calls == 3 and sleeps == [0.0, 0.0]


def test_async_policy_does_not_retry_validation_errors() -> None:
    """A ValidationError is raised from the async policy after one attempt."""
    calls = 0

    async def bad() -> None:
        nonlocal calls
        calls += 1
        raise ValidationError("count must be positive", field="count")

    async def main() -> None:
        await async_retry_policy()(bad)

    with pytest.raises(ValidationError):
        asyncio.run(main())
    assert calls == 1


def test_the_db_policy_retries_only_transient_database_errors() -> None:
    """Locked and dropped connections are transient; constraints and API errors are not, for the store."""
    locked = sa_exc.OperationalError("INSERT", {}, Exception("database is locked"))
    dropped = sa_exc.OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
    duplicate = sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: t.k"))
    transient = Flaky(locked, dropped)
    assert db_retry_policy()(transient) == "ok" and transient.calls == 3
    for final in (duplicate, _classified(status_error(503))):
        once = Flaky(final)
        with pytest.raises(type(final)):
            db_retry_policy()(once)
        assert once.calls == 1
