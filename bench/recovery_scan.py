"""Recovery page scan at scale: how long `core.recovery.scan` takes with many saved conversations.

    .venv/bin/python bench/recovery_scan.py [--conversations 100000] [--repeat 5] [--root DIR]

Seeds a fresh SQLite file (one completed batch whose items are all done, each with its
conversation, plus a few single generations) and times the scan the Recovery page runs.
`--root` imports `core` from another checkout (e.g. the main branch's) to time it before a change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--conversations", type=int, default=100_000)
ARGS.add_argument("--repeat", type=int, default=5)
ARGS.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
ARGS.add_argument("--turn-chars", type=int, default=60, help="characters per message (6 messages each)")


def seed(engine, n: int, turn_chars: int = 60) -> str:  # type: ignore[no-untyped-def]
    """One completed batch of `n` done items, each with its conversation; returns the batch id."""
    from core.store.schema import batch_items, batch_jobs, conversations, utcnow

    now, bid = utcnow(), str(uuid.uuid4())
    turns = [{"role": "user" if k % 2 == 0 else "assistant", "content": "x" * turn_chars} for k in range(6)]
    with engine.begin() as conn:
        conn.execute(batch_jobs.insert().values(
            id=bid, name="bench", template="tutoring", model="m", config={}, total_items=n, status="completed",
            created_at=now, updated_at=now))
        for start in range(0, n, 5_000):
            ids = [str(uuid.uuid4()) for _ in range(start, min(n, start + 5_000))]
            conn.execute(conversations.insert(), [dict(
                id=cid, batch_id=bid, item_index=start + k, template="tutoring", model="m", params={"topic": "t"},
                system_prompt="s", turns=turns, turn_count=6, input_tokens=1, output_tokens=1, cost_usd=0.0,
                status="ok", created_at=now, error_count=0, is_recovering=False, recovery_attempts=0)
                for k, cid in enumerate(ids)])
            conn.execute(batch_items.insert(), [dict(
                batch_id=bid, item_index=start + k, params={}, status="done", attempts=1, conversation_id=cid,
                created_at=now, updated_at=now) for k, cid in enumerate(ids)])
    return bid


def main() -> int:
    args = ARGS.parse_args()
    sys.path.insert(0, args.root)
    from core.recovery import scan
    from core.store import create_store_engine, migrate

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        t0 = time.perf_counter()
        seed(engine, args.conversations, args.turn_chars)
        print(f"seeded {args.conversations:,} conversations in {time.perf_counter() - t0:.1f} s")
        scan(engine)  # warm the page cache
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            found = scan(engine)
            times.append(time.perf_counter() - t0)
        print(f"scan: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
              f"over {args.repeat} runs; findings {sum(len(v) for v in found.values())}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
