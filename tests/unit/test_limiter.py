"""Rate limiter: stays under RPM/TPM in every minute, spreads calls, and adapts to headers and 429s."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fake_clock import FakeClock

from core.config import override_settings
from core.resilience import RateLimiter, get_rate_limiter, reset_rate_limiters


def make_limiter(vt: FakeClock, admitted: list[tuple[float, dict[str, float]]] | None = None) -> RateLimiter:
    log = admitted if admitted is not None else []
    return RateLimiter("test", clock=vt, wall_clock=vt.wall, sleep=vt.async_sleep,
                       on_admit=lambda at, needs: log.append((at, needs)))


def acquire(limiter: RateLimiter, est_input: int = 0, est_output: int = 0, *, model: str | None = None) -> float:
    """One acquisition from a test's sync code (on an event loop of its own); the seconds it waited."""
    return asyncio.run(limiter.aacquire(est_input, est_output, model=model))


def run_calls(n: int, est_input: int = 0, est_output: int = 0) -> tuple[RateLimiter, list[tuple[float, dict[str, float]]]]:
    """A limiter on virtual time after n acquisitions in a row, and what it admitted when."""
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(FakeClock(), admitted)

    async def in_a_row() -> None:
        for _ in range(n):
            await limiter.aacquire(est_input, est_output)

    asyncio.run(in_a_row())
    return limiter, admitted


def rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z")


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
                      rate_limit_burst_s=0.5)


def test_200_calls_at_600_rpm_stay_under_and_near_the_limit() -> None:
    """200 acquisitions never exceed 600 in any minute, and run at >= 90% of the rate."""
    vt = FakeClock()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    for _ in range(200):
        acquire(limiter, 100, 100)
    times = [t for t, _ in admitted]
    assert max_in_any_window(times) <= 600
    assert times[-1] <= 200 / (0.9 * 600 / 60)  # 22.2 s: at least 90% of 10 per second
    # spread, not a burst: never more than the bucket (5) plus the rate in any stretch
    for i in range(len(times)):
        for j in range(i, min(i + 60, len(times))):
            assert j - i + 1 <= 5 + 10 * (times[j] - times[i]) + 1e-6


def test_long_runs_fill_every_minute_but_never_overfill_it() -> None:
    """A steady 1,500-call run keeps each full minute between 90% and 100% of the RPM."""
    vt = FakeClock()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    for _ in range(1500):
        acquire(limiter)
    times = [t for t, _ in admitted]
    assert max_in_any_window(times) <= 600
    full_windows = [sum(1 for u in times if t <= u < t + 60) for t in times[::50] if t + 60 <= times[-1]]
    assert full_windows and min(full_windows) >= 540


def test_idle_gaps_do_not_allow_a_burst_over_the_minute() -> None:
    """After idle pauses the sliding window still caps every minute at the RPM."""
    override_settings(rate_limit_rpm=60, rate_limit_burst_s=30.0)  # a big bucket makes bursts likely
    vt = FakeClock()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    rng = random.Random(3)
    for _ in range(400):
        if rng.random() < 0.1:
            vt.sleep(rng.uniform(5, 40))
        acquire(limiter)
    assert max_in_any_window([t for t, _ in admitted]) <= 60


def test_token_limits_hold_per_minute() -> None:
    """Input and output token estimates are kept under their per-minute limits."""
    override_settings(rate_limit_input_tpm=10_000, rate_limit_output_tpm=5_000)
    _, admitted = run_calls(60, 1_000, 400)
    times = [t for t, _ in admitted]
    assert max_in_any_window(times, [n["input_tokens"] for _, n in admitted]) <= 10_000
    assert max_in_any_window(times, [n["output_tokens"] for _, n in admitted]) <= 5_000
    assert times[-1] >= 5 * 60 - 60  # 60k input tokens at 10k a minute take about 5 minutes


def test_actual_usage_gives_back_an_over_estimate() -> None:
    """Recording fewer output tokens than estimated lets the next calls through sooner."""
    override_settings(rate_limit_output_tpm=8_000)

    def run(correct: bool) -> float:
        vt = FakeClock()
        limiter = make_limiter(vt)
        for _ in range(20):
            acquire(limiter, 10, 4_000)
            if correct:
                limiter.record_usage(10, 400, 10, 4_000)
        return vt.now

    assert run(correct=True) < run(correct=False) / 4


def test_a_request_larger_than_the_limit_is_still_admitted() -> None:
    """An estimate above the whole per-minute limit is admitted, paid back at the limit's pace, not refused forever."""
    override_settings(rate_limit_output_tpm=1_000)
    vt = FakeClock()
    limiter = make_limiter(vt)
    acquire(limiter, 0, 5_000)
    acquire(limiter, 0, 5_000)
    assert 240.0 <= vt.now <= 310.0  # the first 5,000 tokens at 1,000 a minute


def test_threads_together_never_exceed_the_rate() -> None:
    """Eight threads acquiring at once are admitted within the minute limit and the bucket."""
    vt = FakeClock()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(40):
            acquire(limiter, 10, 10)

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
            assert j - i + 1 <= 5 + 10 * (times[j] - times[i]) + 1e-6


def test_asyncio_tasks_together_never_exceed_the_rate() -> None:
    """Three hundred concurrent coroutines are paced like sequential calls."""
    vt = FakeClock()
    admitted: list[tuple[float, dict[str, float]]] = []
    limiter = make_limiter(vt, admitted)

    async def main() -> None:
        await asyncio.gather(*(limiter.aacquire(10, 10) for _ in range(300)))

    asyncio.run(main())
    times = [t for t, _ in admitted]
    assert len(times) == 300
    assert times == sorted(times)
    assert max_in_any_window(times) <= 600
    assert times[-1] >= (300 - 5) / 10 - 1e-6


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
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "50",
                             "anthropic-ratelimit-output-tokens-limit": "8000"})
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == 50
    assert snap["effective_output_tpm"] == 8000
    assert snap["effective_input_tpm"] == 10_000_000


def test_headers_saying_nothing_remains_empty_the_bucket_but_do_not_hold_calls_until_reset() -> None:
    """remaining=0 with a reset 10 s ahead: the next call goes after one request's refill (0.1 s), not at reset."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"Anthropic-RateLimit-Requests-Limit": "600",
                             "Anthropic-RateLimit-Requests-Remaining": "0",
                             "Anthropic-RateLimit-Requests-Reset": rfc3339(vt.wall() + 10)})
    waited = acquire(limiter)
    assert 0.09 <= waited <= 0.11
    assert limiter.snapshot()["requests_in_window"] == 1  # nothing booked for the minute


def test_a_remaining_without_reset_is_not_booked_as_a_minute_of_usage() -> None:
    """remaining=0 without a reset costs one refill, and the next calls flow at the configured rate."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-remaining": "0"})
    for _ in range(50):
        acquire(limiter)
    assert vt.now <= 50 / 10 + 0.01  # 50 calls at 10 per second


def test_a_reset_without_remaining_changes_nothing() -> None:
    """A -reset header alone (no -remaining) neither books usage nor delays a call."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-reset": rfc3339(vt.wall() + 30),
                             "anthropic-ratelimit-output-tokens-reset": rfc3339(vt.wall() + 30)})
    assert acquire(limiter) == 0.0
    assert limiter.snapshot()["requests_in_window"] == 1


def test_headers_with_room_to_spare_change_nothing() -> None:
    """Headers that show more room than we use leave the pace untouched."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "600",
                             "anthropic-ratelimit-requests-remaining": "600"})
    assert acquire(limiter) == 0.0


def test_a_smaller_remaining_lowers_the_bucket_for_usage_we_did_not_cause() -> None:
    """Another client left 1 request in the upstream bucket: the second of two quick calls waits a refill."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-remaining": "1"})
    assert acquire(limiter) == 0.0
    assert acquire(limiter) == pytest.approx(0.1)


def test_limits_announced_for_one_model_do_not_slow_another() -> None:
    """A -limit of 60 RPM seen on model A paces model A at 1 per second; model B keeps 600 RPM."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_headers({"anthropic-ratelimit-requests-limit": "60"}, model="model-a")
    assert limiter.snapshot("model-a")["effective_rpm"] == 60
    assert limiter.snapshot("model-b")["effective_rpm"] == 600
    for _ in range(5):
        acquire(limiter, model="model-b")
    assert vt.now == 0.0  # five calls fit model B's half-second bucket at once
    acquire(limiter, model="model-a")
    assert acquire(limiter, model="model-a") == pytest.approx(1.0)


def test_a_429_saying_the_limit_is_exhausted_cuts_the_rate_which_recovers_within_seconds() -> None:
    """remaining=0 on a 429 cuts the rate by 20% once (its echoes do not cut again); 2 quiet seconds restore it."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    acquire(limiter)
    exhausted = {"anthropic-ratelimit-requests-remaining": "0"}
    limiter.observe_rate_limited(1.0, exhausted)
    limiter.observe_rate_limited(1.0, exhausted)  # an echo from a call already in flight: no second cut
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == pytest.approx(480) and snap["rate_limited"] == 2
    assert snap["requests_available"] == 0.0 and snap["output_tokens_available"] > 0  # only the named limit
    assert acquire(limiter) < 0.2  # nobody is paused for the retry-after; the next call waits a refill
    vt.sleep(1.0)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(540)
    vt.sleep(1.0)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(600)


def test_repeated_exhausted_429s_never_go_below_the_floor() -> None:
    """Many separate 429s with remaining=0 slow the rate down to the minimum factor, not to zero."""
    override_settings(rate_limit_min_factor=0.25, rate_limit_relax_step=0.0)
    vt = FakeClock()
    limiter = make_limiter(vt)
    for _ in range(30):
        limiter.observe_rate_limited(0.5, {"anthropic-ratelimit-input-tokens-remaining": "0"})
        vt.sleep(1)
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(150)


def test_a_lone_429_without_rate_limit_headers_slows_nobody() -> None:
    """A 429 with only retry-after, among answers that succeed, leaves the rate and the bucket as they were."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    for _ in range(20):
        acquire(limiter)
        limiter.observe_headers({})
    vt.sleep(1.0)  # the bucket refills
    limiter.observe_rate_limited(1.0, {"retry-after": "1"})
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == 600 and snap["rate_limited"] == 0 and snap["rate_limited_ignored"] == 1
    assert snap["requests_available"] > 0


def test_sustained_429s_without_headers_cut_the_rate() -> None:
    """Half the answers of the last seconds being header-less 429s is a limit we outrun: the rate is cut."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    for i in range(10):
        acquire(limiter)
        limiter.observe_headers({})
        if i % 2:
            limiter.observe_rate_limited(1.0, {})
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(480)

def test_settings_apply_without_a_restart() -> None:
    """Changing the configured RPM changes the limiter's effective rate at once."""
    vt = FakeClock()
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


def test_the_longest_current_wait_is_visible_and_a_long_wait_is_recorded_once() -> None:
    """Calls held 20 s by the output-token limit show their wait in snapshot() and write one record, not one each."""
    override_settings(rate_limit_output_tpm=600, rate_limit_visible_wait_s=10.0)
    vt = FakeClock()
    reports: list[dict[str, object]] = []
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        await vt.async_sleep(seconds)
        seen.append(limiter.snapshot()["longest_wait_s"])

    limiter = RateLimiter("test", clock=vt, wall_clock=vt.wall, on_long_wait=reports.append, sleep=sleep)
    for _ in range(3):
        acquire(limiter, 0, 200)  # 200 tokens at 10 per second: 20 s each after the first
    assert max(seen) == pytest.approx(20.0)
    assert len(reports) == 1
    assert reports[0]["bound_by"] == "output_tokens" and reports[0]["limit_per_min"] == 600
    assert limiter.snapshot()["longest_wait_s"] == 0.0 and limiter.snapshot()["waiting"] == 0


def test_short_waits_are_not_recorded() -> None:
    """Pacing at the configured rate (waits of a tenth of a second) writes nothing to the error log."""
    vt = FakeClock()
    reports: list[dict[str, object]] = []
    limiter = RateLimiter("test", clock=vt, wall_clock=vt.wall, sleep=vt.async_sleep, on_long_wait=reports.append)
    for _ in range(100):
        acquire(limiter)
    assert reports == []


def test_a_429_whose_headers_show_room_does_not_slow_everyone() -> None:
    """A 429 arriving with headers that say every limit has room keeps the rate and the bucket."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_rate_limited(3.0, {"anthropic-ratelimit-requests-limit": "600",
                                       "anthropic-ratelimit-requests-remaining": "400",
                                       "anthropic-ratelimit-output-tokens-remaining": "90000"})
    snap = limiter.snapshot()
    assert snap["effective_rpm"] == 600 and snap["rate_limited_ignored"] == 1
    assert acquire(limiter) == 0.0


def test_a_429_whose_headers_show_any_exhausted_limit_cuts_the_rate() -> None:
    """A 429 with a remaining of zero in any dimension (the combined tokens one too) is a real limit."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    limiter.observe_rate_limited(3.0, {"anthropic-ratelimit-requests-remaining": "400",
                                       "anthropic-ratelimit-tokens-remaining": "0"})
    assert limiter.snapshot()["effective_rpm"] == pytest.approx(480)


def test_a_refunded_request_frees_its_slot_in_the_minute():
    """refund_request (for an upstream that does not count refused calls) gives the slot back to the minute."""
    override_settings(rate_limit_rpm=60)
    vt = FakeClock()
    limiter = make_limiter(vt)
    for i in range(120):
        acquire(limiter, 0, 0)
        if i % 2 == 0:
            limiter.refund_request()
    assert vt.now < 75  # 60 counted calls at 60 RPM need about a minute, not two


def test_without_refunds_every_admitted_request_counts():
    """The same 120 calls without refunds take about two minutes at 60 RPM, as the API counts them."""
    override_settings(rate_limit_rpm=60)
    vt = FakeClock()
    limiter = make_limiter(vt)
    for _ in range(120):
        acquire(limiter, 0, 0)
    assert vt.now > 110


def test_no_status_is_refunded_by_default():
    """The API counts 429s and 5xx against the limit, so by default no answer gives its slot back."""
    from core.config import Settings

    assert Settings().rate_limit_refund_statuses == ()


# ---- against a simulated upstream ------------------------------------------------------------
class Upstream:
    """A token-bucket API (1 s of burst) that answers in one of the header modes, maybe with unrelated 429s."""

    def __init__(self, vt: FakeClock, rpm: int, mode: str, *, unrelated_429: float = 0.0, seed: int = 1) -> None:
        self.vt, self.rate, self.mode, self.unrelated = vt, rpm / 60.0, mode, unrelated_429
        self.capacity = self.rate * 1.0
        self.level, self.stamp = self.capacity, 0.0
        self.rng = random.Random(seed)
        self.rpm = rpm
        self.served = self.limit_429s = self.unrelated_429s = 0

    def headers(self) -> dict[str, str]:
        remaining = str(max(0, int(self.level)))
        reset = rfc3339(self.vt.wall() + (self.capacity - self.level) / self.rate)
        base = "anthropic-ratelimit-requests-"
        if self.mode == "full":
            return {base + "limit": str(self.rpm), base + "remaining": remaining, base + "reset": reset}
        if self.mode == "remaining_only":
            return {base + "limit": str(self.rpm), base + "remaining": remaining}
        if self.mode == "reset_only":
            return {base + "reset": reset}
        return {}

    def serve(self, limiter: RateLimiter, *, until: Callable[[], bool]) -> int:
        """Attempts through the limiter, one after another, until `until()`; how many there were."""

        async def attempts() -> int:
            count = 0
            while not until():
                await limiter.aacquire()
                self.answer(limiter)
                count += 1
            return count

        return asyncio.run(attempts())

    def answer(self, limiter: RateLimiter) -> bool:
        """Answer one attempt the limiter admitted; True when it was served."""
        now = self.vt()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level < 1:
            self.limit_429s += 1
            headers = self.headers()
            limiter.observe_headers(headers)
            limiter.observe_rate_limited(1.0, headers)
            self.vt.sleep(1.0)  # the retry policy waits the retry-after
            return False
        self.level -= 1  # charged, whatever the answer
        if self.rng.random() < self.unrelated:
            self.unrelated_429s += 1
            limiter.observe_headers({"retry-after": "1"})
            limiter.observe_rate_limited(1.0, {"retry-after": "1"})
            return False
        self.served += 1
        limiter.observe_headers(self.headers())
        return True


@pytest.mark.parametrize("mode", ["full", "remaining_only", "reset_only", "none"])
def test_each_header_mode_runs_at_the_configured_rate_without_a_limit_429(mode: str) -> None:
    """Behind a 600 RPM upstream, 600 calls in every header mode reach >= 95% of the rate and draw no limit 429."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    upstream = Upstream(vt, 600, mode)
    upstream.serve(limiter, until=lambda: upstream.served >= 600)
    assert upstream.limit_429s == 0
    assert 600 / vt.now >= 0.95 * 10


@pytest.mark.parametrize("mode", ["full", "remaining_only", "none"])
def test_a_steady_5_percent_of_unrelated_429s_keeps_the_rate_within_10_percent(mode: str) -> None:
    """5% of answers are 429s the batch did not cause: requests still flow at >= 90% of the configured rate."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    upstream = Upstream(vt, 600, mode, unrelated_429=0.05, seed=7)
    attempts = upstream.serve(limiter, until=lambda: vt.now >= 120)
    assert upstream.unrelated_429s >= 0.03 * attempts  # the stream of 429s was there
    assert attempts / vt.now >= 0.9 * 10
    assert limiter.snapshot()["effective_rpm"] >= 0.9 * 600


def test_an_upstream_with_a_lower_limit_and_no_headers_is_found_by_backing_off() -> None:
    """Configured 600 RPM against a 300 RPM upstream without headers: sustained 429s bring the pace down to it."""
    vt = FakeClock()
    limiter = make_limiter(vt)
    upstream = Upstream(vt, 300, "none")
    upstream.serve(limiter, until=lambda: vt.now >= 120)
    assert upstream.served / vt.now >= 0.8 * 5  # most of the upstream's limit is used
    assert upstream.limit_429s <= 0.25 * upstream.served  # not an endless stream of 429s


def test_a_long_run_keeps_only_the_recent_answers() -> None:
    """An hour of answers at 10 per second leaves only the sustained window's worth in memory."""
    override_settings(rate_limit_sustained_window_s=10.0)
    vt = FakeClock()
    limiter = make_limiter(vt)

    async def an_hour() -> None:
        for _ in range(36_000):
            await limiter.aacquire()
            limiter.observe_headers({})

    asyncio.run(an_hour())
    assert len(limiter._paces[""].answers) <= 10 * 10 + 1


def test_the_window_stays_a_minute_of_slots_at_any_request_rate() -> None:
    """At 2,000 calls/s the window keeps at most 60 s / slot entries per dimension, and still caps the minute."""
    override_settings(rate_limit_rpm=120_000, resilience_window_slot_s=0.25)
    limiter, admitted = run_calls(20_000, 100, 100)
    windows = {name: len(dim.window) for pace in limiter._paces.values() for name, dim in pace.dims.items()}
    # one entry per admission would be 20,000 per dimension
    assert windows and max(windows.values()) <= 60 / 0.25 + 1
    assert max_in_any_window([t for t, _ in admitted]) <= 120_000
    assert limiter.snapshot()["requests_in_window"] == 20_000
