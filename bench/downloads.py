"""Server memory of a page download: the whole file built in memory (before) vs the capped download (after).

    .venv/bin/python bench/downloads.py [--errors 200000] [--conversations 20000]

Seeds a fresh SQLite file, then builds each download the way the page's button callable does
and reports the process's peak resident memory above its level before the build (Linux
VmHWM, reset through /proc/self/clear_refs before each build) and the file's size.
"whole" is what the pages did before (every row joined into one string, then encoded);
"capped" is core.ui.downloads.capped at the ui_download_max_mb setting.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--errors", type=int, default=200_000)
ARGS.add_argument("--conversations", type=int, default=20_000)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _measure(name: str, build: Callable[[], bytes]) -> None:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current level
    base = _status("VmRSS:")
    t0 = time.perf_counter()
    data = build()
    elapsed = time.perf_counter() - t0
    peak = _status("VmHWM:") - base
    print(f"{name:<28} file {len(data) / 2**20:8.1f} MiB  peak +{peak / 2**20:7.1f} MiB  {elapsed:6.1f} s")
    del data


def _whole(chunks: Iterator[str]) -> bytes:
    return "".join(chunks).encode("utf-8")


def main() -> int:
    args = ARGS.parse_args()
    from recovery_scan import seed

    from core.datasets import DatasetExport, ExportSpec
    from core.errorlog.export import iter_csv_chunks
    from core.errorlog.seed import seed_errors
    from core.store import create_store_engine, migrate
    from core.ui.downloads import capped

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        seed_errors(engine, args.errors, days=7)
        seed(engine, args.conversations, turn_chars=800)
        print(f"{args.errors:,} error rows, {args.conversations:,} conversations (~5 KB each)")
        for kind, rows in (("errors CSV", lambda: iter_csv_chunks(engine, None)),
                           ("conversations JSONL", lambda: DatasetExport(engine, None, ExportSpec(status="all")).lines()),
                           ("conversations CSV",
                            lambda: DatasetExport(engine, None, ExportSpec(format="csv", status="all")).lines())):
            _measure(f"{kind} whole", lambda rows=rows: _whole(rows()))
            _measure(f"{kind} capped", lambda rows=rows: capped(rows()))
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
