"""`python -m core demo seed-errors`: synthetic data for benchmarks, demos and screenshots."""

from __future__ import annotations

import argparse
import time

from core.cli import add_action, add_group
from core.cli.args import whole_number
from core.errorlog.seed import seed_errors
from core.store import get_engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = add_group(sub, "demo", help="synthetic data for benchmarks and screenshots")
    p = add_action(
        demo, "seed-errors", _seed_errors, help="insert realistic synthetic error-log rows (prints rows and rows/s)",
        description="Insert COUNT realistic error rows spread over the last DAYS days, across types, "
                    "codes, severities, components and batches.")
    p.add_argument("--count", required=True, type=whole_number(1, "log_seed_max_rows"), help="how many rows")
    p.add_argument("--days", type=whole_number(1, "time_span_max_days"), default=30, help="spread them over this many days (30)")
    p.add_argument("--seed", type=int, default=0, help="random seed, for repeatable data (0)")


def _seed_errors(args: argparse.Namespace) -> int:
    # imported here: the generator's vocabulary is not needed by any other command

    engine = get_engine()
    started = time.perf_counter()
    written = seed_errors(engine, args.count, days=args.days, seed=args.seed)
    elapsed = time.perf_counter() - started
    print(f"{written} rows in {elapsed:.2f} s ({written / elapsed:,.0f} rows/s)")
    return 0
