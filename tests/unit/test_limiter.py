"""Rate limiter: stays under RPM/TPM in every minute, spreads calls, and adapts to headers and 429s."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.config import override_settings
from core.resilience import RateLimiter, get_rate_limiter, reset_rate_limiters

WALL_START = 1_800_000_000.0


class VirtualTime:
    """A clock that only moves when someone sleeps; safe to share between threads."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def wall(self) -> float:
        return WALL_START + self.clock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # let the other coroutines run


def make_limiter(vt: VirtualTime, admitted: list[tuple[float, dict[str, float]]] | None = None) -> RateLimiter:
    log = admitted if admitted is not None else []
    return RateLimiter("test", clock=vt.clock, wall_clock=vt.wall, sleep=vt.sleep, async_sleep=vt.async_sleep,
                       on_admit=lambda at, needs: log.append((at, needs)))


def max_in_any_window(times: list[float], key: list[float] | None = None, window: float = 60.0) -> float:
    """The largest total admitted within any half-open window [t, t + window)."""
    amounts = key or [1.0] * len(times)
    best = total = 0.0
    j = 0
    for i in range(len(times)):
        while j < len(times) and times[j] < times[i] + window:
            total += amounts[j]
            j += 1
        best = max(best, total)
        total -= amounts[i]
    return best


@pytest.fixture(autouse=True)
def limits() -> None:
    override_settings(rate_limit_rpm=600, rate_limit_input_tpm=10_000_000, rate_limit_output_tpm=10_000_000,
                      rate_limit_burst_s=2.0)


def test_200_calls_at_600_rpm_stay_under_and_near_the_limit() -> None:
    """200 acquisitions never exceed 600 in any minute, and run at >= 90% of the rate."""
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    for _ in range(200):
        limiter.acquire(100, 100)
    times = [t for t, _ in admitted]
    assert max_in_any_window(times) <= 600
    assert times[-1] <= 200 / (0.9 * 600 / 60)  # 22.2 s: at least 90% of 10 per second
    # spread, not a burst: never more than the bucket (20) plus the rate in any stretch
    for i in range(len(times)):
        for j in range(i, min(i + 60, len(times))):
            assert j - i + 1 <= 20 + 10 * (times[j] - times[i]) + 1e-6


def test_long_runs_fill_every_minute_but_never_overfill_it() -> None:
    """A steady 1,500-call run keeps each full minute between 90% and 100% of the RPM."""
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    for _ in range(1500):
        limiter.acquire()
    times = [t for t, _ in admitted]
    assert max_in_any_window(times) <= 600
    full_windows = [sum(1 for u in times if t <= u < t + 60) for t in times[::50] if t + 60 <= times[-1]]
    assert full_windows and min(full_windows) >= 540


def test_idle_gaps_do_not_allow_a_burst_over_the_minute() -> None:
    """After idle pauses the sliding window still caps every minute at the RPM."""
    override_settings(rate_limit_rpm=60, rate_limit_burst_s=30.0)  # a big bucket makes bursts likely
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    rng = random.Random(3)
    for _ in range(400):
        if rng.random() < 0.1:
            vt.sleep(rng.uniform(5, 40))
        limiter.acquire()
    assert max_in_any_window([t for t, _ in admitted]) <= 60


def test_token_limits_hold_per_minute() -> None:
    """Input and output token estimates are kept under their per-minute limits."""
    override_settings(rate_limit_input_tpm=10_000, rate_limit_output_tpm=5_000)
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    for _ in range(60):
        limiter.acquire(1_000, 400)
    times = [t for t, _ in admitted]
    assert max_in_any_window(times, [n["input_tokens"] for _, n in admitted]) <= 10_000
    assert max_in_any_window(times, [n["output_tokens"] for _, n in admitted]) <= 5_000
    assert times[-1] >= 5 * 60 - 60  # 60k input tokens at 10k a minute take about 5 minutes


def test_actual_usage_gives_back_an_over_estimate() -> None:
    """Recording fewer output tokens than estimated lets the next calls through sooner."""
    override_settings(rate_limit_output_tpm=8_000)

    def run(correct: bool) -> float:
        vt = VirtualTime()
        limiter = make_limiter(vt)
        for _ in range(20):
            limiter.acquire(10, 4_000)
            if correct:
                limiter.record_usage(10, 400, 10, 4_000)
        return vt.now

    assert run(correct=True) < run(correct=False) / 4


def test_a_request_larger_than_the_limit_is_still_admitted() -> None:
    """An estimate above the whole per-minute limit is admitted, paid back at the limit's pace, not refused forever."""
    override_settings(rate_limit_output_tpm=1_000)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.acquire(0, 5_000)
    limiter.acquire(0, 5_000)
    assert 240.0 <= vt.now <= 310.0  # the first 5,000 tokens at 1,000 a minute


def test_threads_together_never_exceed_the_rate() -> None:
    """Eight threads acquiring at once are admitted within the minute limit and the bucket."""
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(40):
            limiter.acquire(10, 10)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(t for t, _ in admitted)
    assert len(times) == 320
    assert max_in_any_window(times) <= 600
    for i in range(len(times)):
        for j in range(i, min(i + 60, len(times))):
            assert j - i + 1 <= 20 + 10 * (times[j] - times[i]) + 1e-6


def test_asyncio_tasks_together_never_exceed_the_rate() -> None:
    """Three hundred concurrent coroutines are paced like sequential calls."""
    vt = VirtualTime()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)

    async def main() -> None:
        await asyncio.gather(*(limiter.aacquire(10, 10) for _ in range(300)))

    asyncio.run(main())
    times = [t for t, _ in admitted]
    assert len(times) == 300
    assert times == sorted(times)
    assert max_in_any_window(times) <= 600
    assert times[-1] >= (300 - 20) / 10 - 1e-6


def test_async_acquire_with_the_real_clock_paces_calls() -> None:
    """With the real clock, 12 calls at 1,200 RPM and a 0.25 s bucket take at least 0.3 s."""
    override_settings(rate_limit_rpm=1_200, rate_limit_burst_s=0.25)
    limiter = RateLimiter("real")

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(limiter.aacquire() for _ in range(12)))
        return loop.time() - started

    assert asyncio.run(main()) >= (12 - 5) / 20 - 0.05


def test_headers_adopt_a_lower_limit() -> None:
    """A server -limit below the configured RPM becomes the effective limit."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "50",
                             "anthropic-ratelimit-output-tokens-limit": "8000"})
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == 50
    assert snap["effective_output_tpm"] == 8000
    assert snap["effective_input_tpm"] == 10_000_000


def test_headers_saying_nothing_remains_hold_calls_until_reset() -> None:
    """remaining=0 with a reset 10 s ahead makes the next call wait until about then."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    reset = datetime.fromtimestamp(vt.wall() + 10, UTC).isoformat().replace("+00:00", "Z")
    limiter.observe_headers({"Anthropic-RateLimit-Requests-Limit": "600",
                             "Anthropic-RateLimit-Requests-Remaining": "0",
                             "Anthropic-RateLimit-Requests-Reset": reset})
    waited = limiter.acquire()
    assert 9.9 <= waited <= 10.5


def test_headers_with_room_to_spare_change_nothing() -> None:
    """Headers that show more room than we use leave the pace untouched."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "600",
                             "anthropic-ratelimit-requests-remaining": "600"})
    assert limiter.acquire() == 0.0


def test_a_429_pauses_everyone_then_the_rate_relaxes_back() -> None:
    """A 429 pauses acquisitions for retry-after, cuts the rate by 20%, and quiet time restores it."""
    override_settings(rate_limit_relax_after_s=30.0, rate_limit_relax_step=0.1)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.acquire()
    limiter.observe_rate_limited(4.0)
    limiter.observe_rate_limited(4.0)  # an echo from a call already in flight: no second cut
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == pytest.approx(480)
    assert snap["paused_for_s"] == pytest.approx(4.0)
    waited = limiter.acquire()
    assert waited >= 4.0
    vt.sleep(31)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(540)
    vt.sleep(30)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(600)


def test_repeated_429s_never_go_below_the_floor() -> None:
    """Many separate 429s slow the rate down to the minimum factor, not to zero."""
    override_settings(rate_limit_min_factor=0.25)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    for _ in range(30):
        limiter.observe_rate_limited(0.5)
        vt.sleep(1)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(150)


def test_a_429_without_retry_after_uses_the_default_pause() -> None:
    """No retry-after: the pause is settings.rate_limit_default_pause_s."""
    override_settings(rate_limit_default_pause_s=3.0)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_rate_limited(None)
    assert limiter.acquire() >= 3.0


def test_settings_apply_without_a_restart() -> None:
    """Changing the configured RPM changes the limiter's effective rate at once."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    assert limiter.snapshot()["effective_rpm"] == 600
    override_settings(rate_limit_rpm=120)
    assert limiter.snapshot()["effective_rpm"] == 120


def test_registry_returns_one_limiter_per_service() -> None:
    """get_rate_limiter() is process-wide per name until reset_rate_limiters()."""
    first = get_rate_limiter("claude")
    assert get_rate_limiter() is first
    reset_rate_limiters()
    assert get_rate_limiter("claude") is not first


def test_snapshot_reports_the_pause_as_a_wall_clock_time() -> None:
    """paused_until is a wall-clock timestamp the UI can show."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_rate_limited(6.0)
    until = limiter.snapshot()["paused_until"]
    assert until == pytest.approx(WALL_START + 6.0)
    assert datetime.fromtimestamp(until, UTC) - datetime.fromtimestamp(WALL_START, UTC) == timedelta(seconds=6)


def test_a_429_whose_headers_show_room_does_not_slow_everyone() -> None:
    """A 429 arriving with headers that say every limit has room pauses nobody and keeps the rate."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "600",
                             "anthropic-ratelimit-requests-remaining": "400",
                             "anthropic-ratelimit-output-tokens-remaining": "90000"})
    limiter.observe_rate_limited(3.0)
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == 600 and snap["paused_for_s"] == 0.0
    assert snap["rate_limited_ignored"] == 1
    assert limiter.acquire() == 0.0


def test_a_429_whose_headers_show_an_exhausted_limit_pauses_everyone() -> None:
    """A 429 with a remaining of zero in any dimension is a real limit: pause and cut the rate."""
    vt = VirtualTime()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-remaining": "400",
                             "anthropic-ratelimit-input-tokens-remaining": "0"})
    limiter.observe_rate_limited(3.0)
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == pytest.approx(480) and snap["paused_for_s"] == pytest.approx(3.0)


def test_refunded_requests_free_their_slot_in_the_minute():
    """Calls the server refused unserved give their request slot back, so served calls reach the limit."""
    override_settings(rate_limit_rpm=60, rate_limit_input_tpm=10**9, rate_limit_output_tpm=10**9)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    for i in range(120):
        limiter.acquire(0, 0)
        if i % 2 == 0:
            limiter.refund_request()  # every other call is refused unserved (429/503/529)
    # 60 served + 60 refunded calls: at 60 RPM the served ones need about a minute, not two
    assert vt.now < 75


def test_without_refunds_every_admitted_request_counts():
    """The same 120 calls without refunds take about two minutes at 60 RPM."""
    override_settings(rate_limit_rpm=60, rate_limit_input_tpm=10**9, rate_limit_output_tpm=10**9)
    vt = VirtualTime()
    limiter = make_limiter(vt)
    for _ in range(120):
        limiter.acquire(0, 0)
    assert vt.now > 110
