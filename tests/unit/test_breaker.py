"""Circuit breakers: open on repeated service failures, fail fast, probe, close; safe under threads and asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fake_clock import FakeClock

from core.config import override_settings
from core.errors import APIError, DatabaseError, GenerationError, NetworkError, ValidationError
from core.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    ClaudeCircuitOpenError,
    DatabaseCircuitOpenError,
    all_breakers,
    counts_as_failure,
    get_breaker,
    reset_breakers,
)
from core.store import get_engine, migrate


def server_error(status: int = 503) -> APIError:
    return APIError(f"status {status}", code="service_unavailable", status_code=status, recoverable=True)


@pytest.fixture
def clock() -> FakeClock:
    override_settings(breaker_failure_threshold=3, breaker_window_s=10, breaker_cooldown_s=5,
                      breaker_success_threshold=2, breaker_half_open_max_calls=1)
    return FakeClock(start=1000.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("claude", clock=clock)


@pytest.fixture
def migrated_store() -> None:
    """The test's own database, migrated: entry points migrate before they record, the log's writer does not."""
    migrate(get_engine())


def fail(breaker: CircuitBreaker, times: int, error: BaseException | None = None) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure(error or server_error())


def test_opens_after_threshold_failures_in_the_window(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Three service failures within ten seconds open the breaker; two do not."""
    fail(breaker, 2)
    assert breaker.state == "closed"
    clock.advance(1)
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.snapshot()["total_opens"] == 1


def test_failures_spread_beyond_the_window_do_not_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Failures further apart than the window never add up to the threshold."""
    for _ in range(10):
        fail(breaker, 1)
        clock.advance(6)  # two failures at most inside any 10 s window
    assert breaker.state == "closed"
    assert breaker.snapshot()["failures"] <= 2


def test_open_breaker_fails_fast_with_the_remaining_cooldown(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """While open, calls are refused at once with retry_after_s = the cool-down left."""
    fail(breaker, 3)
    clock.advance(2)
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    err = info.value
    assert err.code == "circuit_open" and err.is_recoverable and err.error_type == "api"
    assert err.retry_after_s == pytest.approx(3.0)
    assert "paused for 3 s" in err.user_message
    assert breaker.snapshot()["retry_in_s"] == pytest.approx(3.0)


def test_half_opens_after_cooldown_and_limits_probes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """After the cool-down one probe goes through; a second caller is refused while it runs."""
    fail(breaker, 3)
    clock.advance(5)
    assert breaker.state == "half_open"
    breaker.before_call()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_closes_after_enough_probe_successes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Two successful probes close the breaker and clear its failure count."""
    fail(breaker, 3)
    clock.advance(5)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "half_open"
    breaker.before_call()
    breaker.record_success()
    snap = breaker.snapshot()
    assert snap["state"] == "closed" and snap["failures"] == 0 and snap["opened_at"] is None
    breaker.before_call()  # no refusal once closed


def test_probe_failure_reopens(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """A failed probe re-opens the breaker for a full new cool-down."""
    fail(breaker, 3)
    clock.advance(5)
    breaker.before_call()
    breaker.record_failure(NetworkError("reset", code="connection_error"))
    assert breaker.state == "open"
    assert breaker.snapshot()["total_opens"] == 2
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after_s == pytest.approx(5.0)


def test_a_probe_that_never_reports_back_frees_its_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """A probe whose caller vanished stops blocking others after a cool-down."""
    fail(breaker, 3)
    clock.advance(5)
    breaker.before_call()  # this caller never reports
    clock.advance(5)
    breaker.before_call()  # let through: the first probe is presumed lost


@pytest.mark.parametrize("error", [
    APIError("bad", code="bad_request", status_code=400, recoverable=False),
    APIError("key", code="authentication_failed", status_code=401, recoverable=False),
    APIError("slow down", code="rate_limited", status_code=429, recoverable=True),
    APIError("limit", code="spend_limit", status_code=429, recoverable=False),
    ValidationError("count", field="count"),
    GenerationError("not a conversation"),
    KeyError("bug"),
])
def test_client_side_errors_do_not_trip_it(breaker: CircuitBreaker, error: BaseException) -> None:
    """4xx, validation and unusable replies say nothing about the service's health."""
    assert not counts_as_failure(error)
    fail(breaker, 10, error)
    assert breaker.state == "closed"


@pytest.mark.parametrize("error", [
    APIError("overloaded", code="overloaded", status_code=529, recoverable=True),
    APIError("boom", code="server_error", status_code=500, recoverable=True),
    APIError("timeout", code="request_timeout", status_code=408, recoverable=True),
    APIError("stream", code="stream_error"),
    NetworkError("timeout", code="timeout"),
    DatabaseError("gone", code="db_connection"),
])
def test_service_failures_count(error: BaseException) -> None:
    """5xx, 529, 408, stream errors, network and transient database errors count as failures."""
    assert counts_as_failure(error)


def test_database_breaker_error_names_the_database(clock: FakeClock) -> None:
    """The database breaker's refusal is a database error that talks about saving."""
    breaker = CircuitBreaker("database", clock=clock)
    fail(breaker, 3, DatabaseError("locked", code="db_locked"))
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.error_type == "database"
    assert "database" in info.value.user_message.lower()


def test_consistent_under_eight_threads(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Eight threads failing at once open the breaker exactly once, and only one probe gets through."""
    start = threading.Barrier(8)
    refused = []
    errors: list[BaseException] = []

    def hammer() -> None:
        start.wait()
        for _ in range(200):
            try:
                breaker.before_call()
            except CircuitOpenError:
                refused.append(1)
                continue
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return
            breaker.record_failure(server_error())

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    snap = breaker.snapshot()
    assert snap["state"] == "open" and snap["total_opens"] == 1
    assert len(refused) >= 8 * 200 - 3 - 8  # at most the threshold plus in-flight calls passed

    clock.advance(5)
    admitted = []
    probe_start = threading.Barrier(8)

    def probe() -> None:
        probe_start.wait()
        try:
            breaker.before_call()
            admitted.append(1)
        except CircuitOpenError:
            pass

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 1


def test_consistent_under_asyncio_gather(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Concurrent coroutines open it once, then fail fast; after the cool-down one probe closes it stepwise."""
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise server_error(529)

    async def ok() -> str:
        await asyncio.sleep(0)
        return "ok"

    async def main() -> list[object]:
        return await asyncio.gather(*(breaker.acall(failing) for _ in range(50)), return_exceptions=True)

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, CircuitOpenError)]
    # every coroutine passes before_call before any of them fails (they all start, then await)
    assert calls + len(refused) == 50
    assert breaker.snapshot()["total_opens"] == 1 and breaker.state == "open"

    clock.advance(5)

    async def probes() -> list[object]:
        return await asyncio.gather(*(breaker.acall(ok) for _ in range(10)), return_exceptions=True)

    first = asyncio.run(probes())
    assert sum(1 for r in first if r == "ok") == 1
    asyncio.run(probes())
    assert breaker.state == "closed"


def test_registry_lists_known_services_and_resets() -> None:
    """all_breakers() always shows claude and database; reset_breakers() forgets state."""
    names = [s["name"] for s in all_breakers()]
    assert names == ["claude", "database"]
    b = get_breaker("claude")
    assert get_breaker("claude") is b
    reset_breakers()
    assert get_breaker("claude") is not b


def test_state_changes_are_kept_in_history(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Open, half-open and closed transitions are remembered in order."""
    fail(breaker, 3)
    clock.advance(5)
    for _ in range(2):
        breaker.before_call()
        breaker.record_success()
    assert [state for state, _ in breaker.history] == ["open", "half_open", "closed"]


def test_state_changes_reach_the_error_log(breaker: CircuitBreaker, clock: FakeClock, migrated_store: None) -> None:
    """Opening is logged as a warning and closing as info, under component breaker.<name>."""
    from core.errorlog import flush, recent

    fail(breaker, 3)
    clock.advance(5)
    for _ in range(2):
        breaker.before_call()
        breaker.record_success()
    assert flush(30.0)
    rows = [r for r in reversed(recent(20)) if r.get("component") == "breaker.claude"]
    assert [(r["error_code"], r["severity"]) for r in rows] == [
        ("circuit_opened", "warn"), ("circuit_half_open", "info"), ("circuit_closed", "info")]
    assert rows[0]["error_type"] == "api" and rows[-1]["recovered"] is True


@pytest.mark.parametrize(("service", "cls", "error_type"), [
    ("claude", ClaudeCircuitOpenError, "api"),
    ("database", DatabaseCircuitOpenError, "database"),
    ("search", CircuitOpenError, "api"),
])
def test_a_refusal_is_an_instance_of_its_services_class(service: str, cls: type, error_type: str) -> None:
    """Each breaker's refusal has its own class, and its error_type is that class's, not set per instance."""
    err = CircuitOpenError(service, 1.0)
    assert type(err) is cls and err.service == service and err.code == "circuit_open"
    assert cls.error_type == error_type and "error_type" not in vars(err)


def test_the_database_breaker_refuses_and_logs_as_the_database(clock: FakeClock, migrated_store: None) -> None:
    """An open database breaker raises DatabaseCircuitOpenError and its state changes log as "database"."""
    from core.errorlog import flush, recent

    breaker = CircuitBreaker("database", clock=clock)
    fail(breaker, 3, DatabaseError("gone", code="db_connection", recoverable=True))
    with pytest.raises(DatabaseCircuitOpenError):
        breaker.before_call()
    assert flush(30.0)
    rows = [r for r in recent(20) if r.get("component") == "breaker.database"]
    assert rows and {(r["error_code"], r["error_type"]) for r in rows} == {("circuit_opened", "database")}


def test_circuit_open_error_survives_pickling() -> None:
    """A refusal sent back from a worker process keeps its service, wait and messages."""
    import pickle

    err = pickle.loads(pickle.dumps(CircuitOpenError("database", 4.2)))
    assert err.service == "database" and err.error_type == "database"
    assert err.retry_after_s == pytest.approx(4.2) and "paused for 5 s" in err.user_message


def test_scattered_transient_faults_among_successes_do_not_open_the_breaker(monkeypatch):
    """A batch at speed with 20% transient faults keeps its breaker closed."""
    from core.config import reload_settings
    from core.errors import APIError
    from core.resilience import get_breaker

    monkeypatch.setenv("STUDIO_BREAKER_FAILURE_THRESHOLD", "5")
    reload_settings()
    breaker = get_breaker("claude")
    for i in range(100):
        breaker.before_call()
        if i % 5 == 0:
            breaker.record_failure(APIError("overloaded", code="overloaded", status_code=529))
        else:
            breaker.record_success()
    assert breaker.state == "closed"


def test_mostly_failing_service_opens_the_breaker_despite_earlier_successes(monkeypatch):
    """Once failures are the majority of recent calls, the threshold opens the breaker."""
    from core.config import reload_settings
    from core.errors import APIError
    from core.resilience import get_breaker

    monkeypatch.setenv("STUDIO_BREAKER_FAILURE_THRESHOLD", "5")
    reload_settings()
    breaker = get_breaker("claude")
    for _ in range(4):
        breaker.before_call()
        breaker.record_success()
    for _ in range(5):
        breaker.before_call()
        breaker.record_failure(APIError("overloaded", code="overloaded", status_code=529))
    assert breaker.state == "open"


def dropped_connection() -> DatabaseError:
    return DatabaseError("server closed the connection unexpectedly", code="db_connection", recoverable=True)


def test_a_breaker_opened_by_dropped_connections_probes_after_the_short_reconnect_cooldown(clock: FakeClock) -> None:
    """Dropped connections: probe after 1 s, then 2 s, 4 s... up to the full cool-down; a close starts over."""
    override_settings(breaker_cooldown_s=30, breaker_reconnect_cooldown_s=1)
    db = CircuitBreaker("database", clock=clock)
    fail(db, 3, dropped_connection())
    assert db.state == "open" and db.snapshot()["retry_in_s"] == pytest.approx(1.0)
    waits = []
    for _ in range(6):  # each probe fails again: the wait doubles, never past the full cool-down
        waits.append(db.snapshot()["retry_in_s"])
        clock.advance(waits[-1])
        fail(db, 1, dropped_connection())
    assert waits == [1, 2, 4, 8, 16, 30]
    clock.advance(30)
    for _ in range(2):
        db.before_call()
        db.record_success()
    assert db.state == "closed"
    fail(db, 3, dropped_connection())
    assert db.snapshot()["retry_in_s"] == pytest.approx(1.0)  # a new outage starts from the short wait


def test_a_breaker_opened_by_an_overloaded_or_locked_store_keeps_the_full_cooldown(clock: FakeClock) -> None:
    """Timeouts and a locked SQLite file are not fixed by reconnecting: the probe waits the whole cool-down."""
    override_settings(breaker_cooldown_s=30, breaker_reconnect_cooldown_s=1)
    for code in ("db_timeout", "db_locked"):
        db = CircuitBreaker("database", clock=clock)
        fail(db, 3, DatabaseError("busy", code=code, recoverable=True))
        assert db.snapshot()["retry_in_s"] == pytest.approx(30.0)


def test_a_call_made_past_the_open_breaker_that_succeeds_counts_as_a_probe(clock: FakeClock) -> None:
    """A heartbeat's success while open half-opens the breaker and, with a second one, closes it."""
    db = CircuitBreaker("database", clock=clock)
    fail(db, 3, DatabaseError("locked", code="db_locked", recoverable=True))
    db.record_bypass(DatabaseError("locked", code="db_locked", recoverable=True))
    assert db.state == "open"  # a failure past it changes nothing: it is open already
    db.record_bypass(None)
    assert db.state == "half_open"
    db.record_bypass(None)
    assert db.state == "closed"


def test_a_call_made_past_a_closed_breaker_counts_like_any_other(clock: FakeClock) -> None:
    """Past a closed breaker, failures count toward opening it as usual."""
    db = CircuitBreaker("database", clock=clock)
    for _ in range(3):
        db.record_bypass(dropped_connection())
    assert db.state == "open"


def test_the_window_keeps_one_entry_per_slot_however_many_calls_finish(breaker: CircuitBreaker,
                                                                       clock: FakeClock) -> None:
    """20,000 successes over 10 s leave at most 10 s / slot entries, and failures still count against them."""
    override_settings(resilience_window_slot_s=0.25)
    for _ in range(20_000):
        breaker.before_call()
        breaker.record_success()
        clock.advance(0.0005)
    # one entry per call would be 20,000
    assert 0 < len(breaker._successes) <= 10 / 0.25 + 1
    fail(breaker, 3)  # 3 failures among ~20,000 successes: below the failure ratio
    assert breaker.state == "closed" and breaker.snapshot()["failures"] == 3
    clock.advance(10.5)  # the window has passed: only the new failures count
    fail(breaker, 3)
    assert breaker.state == "open"
