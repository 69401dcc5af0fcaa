"""Recovery benchmark: a batch against the sandbox, its worker killed with SIGKILL again and again.

    .venv/bin/python bench/recovery.py [--items 1000] [--kills 10] [--concurrency 8] [--seed 1]
                                       [--database-url URL]

Runs the same batch twice on a fresh database (a temporary SQLite file unless
--database-url is given): once uninterrupted, once with the worker process killed
(kill -9) `--kills` times at random moments and restarted each time. Prints lost items
(target 0), duplicate conversations (target 0), seconds from each restart to its first
new commit (process start + waiting out the dead worker's lease), the item-commit p95
(the one transaction that saves conversation + item status + the batch's usage,
measured in this process; target under 10 ms on SQLite) and both wall times.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

LEASE_S = 2.0


def _env(base_url: str, database_url: str, data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url, "STUDIO_DATA_DIR": data_dir, "ANTHROPIC_BASE_URL": base_url,
        "STUDIO_LEASE_DURATION_S": str(LEASE_S), "STUDIO_HEARTBEAT_INTERVAL_S": "0.5",
        "STUDIO_WORKER_POLL_INTERVAL_S": "0.2", "STUDIO_RATE_LIMIT_RPM": "1000000",
        "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000", "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000",
        "STUDIO_RETRY_INSTANT": "true", "STUDIO_BREAKER_FAILURE_THRESHOLD": "100000",
        # the default attempt budgets: a kill is counted as a lost attempt, not as one of the
        # item's own, and no item may fail for being in flight at several kills
    })
    return env


def _done(engine: sa.Engine, batch_id: str) -> int:
    from core.store.schema import batch_items

    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(batch_items).where(
            batch_items.c.batch_id == batch_id, batch_items.c.status == "done")).scalar_one()


def _spawn(env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "core", "worker", "--once", "--concurrency", str(concurrency)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _watch(engine: sa.Engine, batch_id: str, proc: subprocess.Popen[bytes], kill_after: float | None,
           ) -> float | None:
    """Poll until the worker exits, or kill it kill_after s after its first new commit; seconds to that commit."""
    start = time.monotonic()
    base = _done(engine, batch_id)
    first: float | None = None
    while proc.poll() is None:
        now = time.monotonic() - start
        if first is None and _done(engine, batch_id) > base:
            first = now
        if kill_after is not None and first is not None and now >= first + kill_after:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.02)
    if first is None and _done(engine, batch_id) > base:
        first = time.monotonic() - start
    return first


def _commit_p95(engine: sa.Engine, n: int = 300) -> tuple[float, float]:
    """p50 and p95 (ms) of the item commit transaction, on a batch of its own."""
    from core.batches import checkpoints, leases
    from core.batches.service import create_batch
    from core.generation import Conversation, GenerationParams, GenerationResult, Turn
    from core.llm.client import LLMResult, Usage

    bid = create_batch(engine, template="tutoring", count=n, turns=4)
    params = GenerationParams(template="tutoring", persona="p", emotion="e", topic="t", turns=4)
    usage = Usage(input_tokens=250, output_tokens=120)
    turns = [Turn("user" if i % 2 == 0 else "assistant", "x" * 300) for i in range(4)]
    llm = LLMResult(text="", usage=usage, cost_usd=0.001, request_id="r", model="claude-sonnet-5-5",
                    stop_reason="end_turn", attempts=1)
    result = GenerationResult(conversation=Conversation(system_prompt="s" * 300, turns=turns), llm=llm,
                              params=params, raw_text="", usage=usage, cost_usd=0.001)
    claimed = leases.claim_batch(engine, "bench")
    assert claimed is not None and claimed.batch_id == bid
    items = leases.claim_items(engine, bid, "bench", n)
    times = []
    for item in items:
        t0 = time.perf_counter()
        checkpoints.commit_item(engine, item, result)
        times.append((time.perf_counter() - t0) * 1000)
    checkpoints.finalize_batch(engine, bid)  # completed, lease released: the workers never see it
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = tempfile.mkdtemp(prefix="recovery-bench-")
    database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    os.environ.update({"DATABASE_URL": database_url, "STUDIO_DATA_DIR": tmp})
    from core.batches.service import create_batch, get_batch_status
    from core.config import reload_settings
    from core.llm.sandbox import SandboxConfig, SandboxServer
    from core.store import create_store_engine, migrate
    from core.store.schema import conversations

    reload_settings()
    engine = create_store_engine(database_url)
    migrate(engine, force=True)
    sandbox = SandboxServer(SandboxConfig(seed=args.seed, latency_ms=20, tokens_per_s=20_000))
    env = _env(sandbox.start(), database_url, tmp)
    fresh_p50, fresh_p95 = _commit_p95(engine)

    # uninterrupted run
    baseline_id = create_batch(engine, template="customer_support", count=args.items, turns=4,
                                 concurrency=args.concurrency)
    t0 = time.monotonic()
    proc = _spawn(env, args.concurrency)
    _watch(engine, baseline_id, proc, None)
    baseline_wall = time.monotonic() - t0
    assert get_batch_status(engine, baseline_id)["state"] == "completed", "baseline did not complete"

    # the same batch, killed again and again
    batch_id = create_batch(engine, template="customer_support", count=args.items, turns=4,
                                 concurrency=args.concurrency)
    segment = baseline_wall / (args.kills + 1)
    first_commits: list[float] = []
    kill_points: list[int] = []
    t0 = time.monotonic()
    for _ in range(args.kills):
        # a random moment of its work, within its share of the batch after its first commit
        kill_after = rng.uniform(0.1, 1.0) * segment
        proc = _spawn(env, args.concurrency)
        first = _watch(engine, batch_id, proc, kill_after)
        if first is not None:
            first_commits.append(first)
        kill_points.append(_done(engine, batch_id))
    proc = _spawn(env, args.concurrency)
    first = _watch(engine, batch_id, proc, None)
    if first is not None:
        first_commits.append(first)
    interrupted_wall = time.monotonic() - t0
    sandbox.stop()

    status = get_batch_status(engine, batch_id)
    with engine.connect() as conn:
        rows, distinct = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(conversations.c.item_index)))
                                      .where(conversations.c.batch_id == batch_id)).one()
    wal = Path(engine.url.database or "").with_name(Path(engine.url.database or "x").name + "-wal") \
        if engine.dialect.name == "sqlite" else None
    wal_mb = wal.stat().st_size / 1e6 if wal is not None and wal.exists() else 0.0
    p50, p95 = _commit_p95(engine)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "core", "worker", "--help"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # the imports a worker process pays before its first claim
    startup = time.monotonic() - t0
    dialect = engine.dialect.name
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"recovery benchmark: {args.items} items, {args.kills} kill -9s, concurrency {args.concurrency}, {dialect}, "
          f"{os.cpu_count()} CPUs, load average {load}")
    print(f"  state after the last restart: {status['state']}  done {status['done']}  failed {status['failed']}")
    print(f"  kills at done = {kill_points}")
    print(f"  lost items: {args.items - status['done']} (target 0); failed as worker_lost: {status['failed']} "
          "(target 0)")
    print(f"  duplicate conversations: {rows - distinct} (target 0); conversation rows: {rows}")
    if first_commits:
        print(f"  restart -> first new commit: median {statistics.median(first_commits):.2f} s, max "
              f"{max(first_commits):.2f} s over {len(first_commits)} restarts (process start-up ~{startup:.1f} s, "
              f"overlapping the wait for the killed worker's {LEASE_S:.0f} s lease to expire)")
    print(f"  item commit on a fresh database: p50 {fresh_p50:.2f} ms  p95 {fresh_p95:.2f} ms (target p95 < 10 ms "
          "on SQLite)")
    print(f"  item commit after both runs: p50 {p50:.2f} ms  p95 {p95:.2f} ms"
          + (f" (WAL file {wal_mb:.1f} MB before it)" if wal is not None else ""))
    print(f"  wall: uninterrupted {baseline_wall:.1f} s, with {args.kills} kills {interrupted_wall:.1f} s "
          f"(+{interrupted_wall - baseline_wall:.1f} s)")
    engine.dispose()
    return 0 if status["done"] == args.items and rows == distinct == args.items and not status["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
