"""Benchmark: a batch's cost estimate against what the sandbox batch then reports.

    .venv/bin/python bench/estimate_accuracy.py [--items 20] [--rounds 2] [--templates customer_support,tutoring]

Per template and round, on a fresh SQLite store and an in-process sandbox (no faults, no limits):
the estimate before launch (estimate(), which uses the template's measured mean tokens once
conversations of it exist), then a batch of --items run by an in-process worker, then the tokens
and cost the batch reports. Round 1 has no history (the static estimate); later rounds have the
previous rounds' conversations. Figures: estimated / reported for input tokens, output tokens and
cost. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _run(template: str, items: int, engine: object) -> dict[str, float]:
    from core.batches import service
    from core.batches.worker import BatchWorker

    try:
        est = service.estimate(template, items, engine=engine)
    except TypeError:  # before the estimate read measured tokens
        est = service.estimate(template, items)
    batch_id = service.create_batch(engine, template=template, count=items)
    asyncio.run(BatchWorker(concurrency=8).run(once=True))
    got = service.get_batch_status(engine, batch_id)
    return {"est_in": est["input_tokens"], "est_out": est["output_tokens"], "est_cost": est["cost_usd"],
            "in": got["input_tokens"], "out": got["output_tokens"], "cost": got["cost_usd"],
            "done": got["counts"]["done"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--templates", default="customer_support,tutoring")
    args = ap.parse_args()

    from core.llm.sandbox import SandboxServer

    sandbox = SandboxServer(latency_ms=0, tokens_per_s=1_000_000)
    base = sandbox.start()
    with tempfile.TemporaryDirectory() as data:
        os.environ.update({"STUDIO_DATA_DIR": data, "ANTHROPIC_BASE_URL": base, "STUDIO_UI_BACKGROUND_WORKER": "false",
                           "STUDIO_RATE_LIMIT_RPM": "1000000", "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000",
                           "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000"})
        os.environ.pop("DATABASE_URL", None)
        from core.config import reload_settings
        from core.store import get_engine, migrate

        reload_settings()
        engine = get_engine()
        migrate(engine, force=True)
        print("| template | round | estimated in / out tokens | reported in / out tokens | est/reported in | "
              "est/reported out | est/reported cost |")
        print("|---|---|---|---|---|---|---|")
        for template in args.templates.split(","):
            for n in range(1, args.rounds + 1):
                r = _run(template, args.items, engine)
                print(f"| {template} | {n} | {r['est_in']:,} / {r['est_out']:,} | {r['in']:,} / {r['out']:,} | "
                      f"{r['est_in'] / max(r['in'], 1):.2f} | {r['est_out'] / max(r['out'], 1):.2f} | "
                      f"{r['est_cost'] / max(r['cost'], 1e-9):.2f} |")
    sandbox.stop()


if __name__ == "__main__":
    main()
