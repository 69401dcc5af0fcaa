"""Trainer-ready exports and dataset health over a big set: rows/s and peak memory of each.

    .venv/bin/python bench/dataset_exports.py [--conversations 20000] [--turn-words 60]

Seeds a fresh SQLite file with accepted conversations (varied words, one in ten a duplicate of
another), then for each format writes the export with a 0.9 split and the card, and computes the
dataset health the pages show (one streamed pass). Reports seconds, rows/s and the process's
peak resident memory above its level before each step (Linux VmHWM, reset through
/proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--conversations", type=int, default=20_000)
ARGS.add_argument("--turn-words", type=int, default=60)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _measure(name: str, n: int, step: Callable[[], Any]) -> None:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS:")
    t0 = time.perf_counter()
    step()
    elapsed = time.perf_counter() - t0
    peak = _status("VmHWM:") - base
    print(f"{name:<30} {elapsed:7.2f} s  {n / elapsed:9,.0f} rows/s  peak +{peak / 2**20:7.1f} MiB")


def _seed(engine: Any, n: int, words: int) -> None:
    from core.store.schema import conversations, utcnow

    rnd = random.Random(7)
    vocab = [f"w{i}" for i in range(5_000)]
    base = utcnow() - timedelta(days=1)
    ids: list[str] = []
    for start in range(0, n, 5_000):
        rows = []
        for i in range(start, min(n, start + 5_000)):
            cid = str(uuid.uuid4())
            turns = [{"role": "user" if k % 2 == 0 else "assistant",
                      "content": " ".join(rnd.choices(vocab, k=words))} for k in range(6)]
            rows.append(dict(
                id=cid, template="tutoring", model="m", params={"persona": f"p{i % 7}", "emotion": f"e{i % 3}",
                                                                "topic": f"t{i % 5}", "template_version": 1},
                system_prompt="Be kind.", turns=turns, turn_count=6, input_tokens=100, output_tokens=300,
                cost_usd=0.001, status="ok", created_at=base + timedelta(milliseconds=i), error_count=0,
                is_recovering=False, recovery_attempts=0, review_status="accepted", quality_score=rnd.randint(0, 100),
                content_hash=uuid.uuid4().hex, duplicate_of=rnd.choice(ids) if ids and i % 10 == 0 else None))
            ids.append(cid)
        with engine.begin() as conn:
            conn.execute(conversations.insert(), rows)


def main() -> int:
    args = ARGS.parse_args()
    from core.datasets import DatasetExport, ExportSpec, dataset_health
    from core.store import create_store_engine, migrate

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        _seed(engine, args.conversations, args.turn_words)
        n = args.conversations
        print(f"{n:,} accepted conversations, 6 turns of {args.turn_words} words each")
        for fmt, suffix in (("openai", "jsonl"), ("sharegpt", "jsonl"), ("csv", "csv"), ("hf", "parquet")):
            out = Path(tmp) / f"{fmt}.{suffix}"
            _measure(f"export {fmt} + split + card", n,
                     lambda fmt=fmt, out=out: DatasetExport(engine, spec=ExportSpec(
                         format=fmt, split=0.9, card=True)).write(out))
        _measure("dataset health", n, lambda: dataset_health(engine))
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
