"""Benchmark: N items through the worker in each mode (online, Message Batches), same template, against the sandbox.

    .venv/bin/python bench/message_batches_worker.py [--n 10000] [--mode both|online|message_batches]
        [--template cached|NAME] [--error-rate 0.05] [--max-attempts 5] [--sqlite-cache-mb MB] [--json]

Each mode gets a fresh SQLite store and a fresh sandbox. The sandbox runs in this process; the
worker (`BatchWorker.run(once=True)`, what `python -m core worker --once` runs) runs in a child
process of its own, so its RSS is the worker's alone, not the sandbox's nor the other mode's.
Per mode: the worker's wall time, the batch's state, done and failed items, conversations and
duplicate item indexes (must be 0), remote batches, the requests the sandbox received (model
requests: /v1/messages calls online, requests inside remote batches in batch mode; and all HTTP
requests), tokens by kind, the batch's stored cost (at its mode's price) and the same usage priced
at online prices (core.llm.pricing.price through cost_by_kind), and the worker's peak RSS: over
the whole run (ru_maxrss) and, sampled every 20 ms, while it submitted remote batches, inside the
create call, and while it streamed remote results. With both modes (the default) one run gives
the cost ratio, checked against the issue's targets (50 % +- 1 %, streaming peak under 300 MB).
--json prints the figures as JSON and the table on stderr.

`--template cached` (the default) is the built-in tutoring template with a fixed manual appended to
its system prompt, long enough to be cached, so both modes use prompt caching (online: the 5-minute
cache, Message Batches: the 1-hour cache); a built-in name (e.g. tutoring) is below the model's
cacheable minimum. `--error-rate` is both modes' share of retryable faults: the sandbox's fault_rate
online (429/500/503/529) and batch_error_rate in batches (overloaded_error / api_error); neither is
billed. `--sqlite-cache-mb` sets the worker's SQLite page cache per connection (what part of its
RSS is page cache). Online mode runs at an unlimited rate limit against a sandbox with no latency.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("online", "message_batches")
CONCURRENCY = 32
SAMPLE_S = 0.02
CACHED = "cached"
_CACHED_SLUG = "bench_tutoring_manual"
# a fixed text (nothing variable before the cache breakpoint), long enough for every model's minimum
_MANUAL = ("House rules for every session: greet the learner by the name they give, restate the goal of the "
           "session in one sentence, ask what they already know, and build on it one small step at a time. ") * 40


def _env(data: str, base_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STUDIO_") and k not in ("ANTHROPIC_API_KEY", "DATABASE_URL")}
    env.update({
        "DATABASE_URL": f"sqlite:///{data}/studio.db", "STUDIO_DATA_DIR": data,
        "STUDIO_SECRETS_FILE": f"{data}/no-secrets.toml", "STUDIO_RETRY_INSTANT": "true",
        "STUDIO_MESSAGE_BATCH_POLL_INTERVAL_S": "0.2", "STUDIO_RATE_LIMIT_RPM": "1000000",
        "STUDIO_RATE_LIMIT_INPUT_TPM": "1000000000", "STUDIO_RATE_LIMIT_OUTPUT_TPM": "1000000000",
        "STUDIO_ITEM_MAX_ATTEMPTS": str(args.max_attempts), "ANTHROPIC_BASE_URL": base_url})
    if args.sqlite_cache_mb is not None:
        env["STUDIO_WORKER_SQLITE_CACHE_MB"] = str(args.sqlite_cache_mb)
    return env


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Sampler(threading.Thread):
    """The process's RSS every SAMPLE_S: its peak over the run, and per phase (a phase is a wrapped coroutine)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.active: dict[str, int] = {}
        self.peaks: dict[str, float] = {"run": 0.0}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_S):
            rss = _rss_mb()
            for phase in ("run", *(p for p, n in self.active.items() if n)):
                self.peaks[phase] = max(self.peaks.get(phase, 0.0), rss)

    def phase(self, owner: Any, name: str, phase: str) -> None:
        """Count the time inside `owner.name` (an async method) as `phase`."""
        inner = getattr(owner, name)

        async def _timed(*args: Any, **kwargs: Any) -> Any:
            self.active[phase] = self.active.get(phase, 0) + 1
            try:
                return await inner(*args, **kwargs)
            finally:
                self.active[phase] -= 1

        setattr(owner, name, _timed)


def _child(mode: str, n: int, template: str) -> dict[str, Any]:
    """One mode in this process, as the worker: create the batch, run it, the store's figures (sandbox elsewhere)."""
    import sqlalchemy as sa

    from core.batches import message_batches
    from core.batches.service import cost_by_kind, create_batch, get_batch_status
    from core.batches.worker import BatchWorker
    from core.config import get_settings
    from core.store import get_engine, migrate
    from core.store.engine import limit_sqlite_cache
    from core.store.schema import conversations
    from core.templates.builtin import BUILTINS
    from core.templates.store import save_template

    engine = get_engine()
    migrate(engine)
    if template == CACHED:
        base = BUILTINS["tutoring"].content
        save_template(engine, _CACHED_SLUG, replace(base, title="Tutoring (with a house manual)",
                                                    system_prompt=f"{base.system_prompt}\n\n{_MANUAL.strip()}"))
        template = _CACHED_SLUG
    batch_id = create_batch(engine, template=template, count=n, turns=4, mode=mode, concurrency=CONCURRENCY)
    limit_sqlite_cache(engine, get_settings().worker_sqlite_cache_mb)  # as `python -m core worker` does

    sampler = _Sampler()
    sampler.phase(message_batches.RemoteBatchRun, "_collect", "streaming_results")
    sampler.phase(message_batches.RemoteBatchRun, "_submit_pending", "submitting")
    sampler.phase(message_batches.RemoteBatchRun, "_create", "creating")
    before = _rss_mb()
    sampler.start()
    started = time.perf_counter()
    asyncio.run(BatchWorker(engine, concurrency=CONCURRENCY).run(once=True))
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    st = get_batch_status(engine, batch_id)
    with engine.connect() as conn:
        convs, distinct = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(conversations.c.item_index)))
                                       .where(conversations.c.batch_id == batch_id)).one()
    kinds = {k["kind"]: k for k in cost_by_kind(st)}
    online_priced = cost_by_kind({**st, "mode": "online"})
    return {
        "mode": mode, "items": n, "template": template, "wall_s": round(wall, 1), "state": st["state"],
        "done": st["done"], "failed": st["failed"], "conversations": int(convs),
        "duplicate_item_indexes": int(convs) - int(distinct), "remote_batches": len(st["submissions"]),
        "input_tokens": st["input_tokens"], "output_tokens": st["output_tokens"],
        "cache_read_tokens": st["cache_read_tokens"], "cache_creation_tokens": st["cache_creation_tokens"],
        "cost_usd": round(st["cost_usd"], 6),
        "cost_by_kind_usd": {k: round(v["cost_usd"], 6) for k, v in kinds.items()},
        "cost_at_online_prices_usd": round(sum(k["cost_usd"] for k in online_priced), 6),
        "rss_before_run_mb": round(before), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_sampled_mb": round(sampler.peaks["run"]),
        **{f"peak_rss_{phase}_mb": round(sampler.peaks[phase]) if phase in sampler.peaks else None
           for phase in ("submitting", "creating", "streaming_results")},
    }


def _run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One mode: a fresh sandbox here, the worker in a child process on a fresh store; the sandbox's counts added."""
    from core.llm.sandbox import SandboxConfig, SandboxServer

    data = tempfile.mkdtemp(prefix=f"bench-mb-{mode}-")
    srv = SandboxServer(SandboxConfig(latency_ms=0, tokens_per_s=200_000.0, batch_processing_s=0.5,
                                      fault_rate=args.error_rate if mode == "online" else 0.0,
                                      batch_error_rate=args.error_rate if mode == "message_batches" else 0.0))
    srv.start()
    load_before = os.getloadavg()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--n", str(args.n), "--template", args.template],
            env=_env(data, srv.base_url, args), cwd=ROOT, stdout=subprocess.PIPE, check=True)
        out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        stats = srv.stats()
    finally:
        srv.stop()
    out.update({
        "model_requests": stats["messages_requests"] if mode == "online" else stats["batch_requests"],
        "http_requests": stats["requests"], "batches_created": stats["batches"],
        "load_avg": [round(x, 2) for x in (*load_before, *os.getloadavg())], "data_dir": data})
    return out


def _table(results: list[dict[str, Any]]) -> str:
    rows = [("wall time (s)", "wall_s"), ("state", "state"), ("done / failed", None), ("conversations", "conversations"),
            ("duplicate item indexes", "duplicate_item_indexes"), ("remote batches", "remote_batches"),
            ("model requests received", "model_requests"), ("HTTP requests received", "http_requests"),
            ("input / output tokens", None), ("cache read / write tokens", None), ("cost ($)", "cost_usd"),
            ("same usage at online prices ($)", "cost_at_online_prices_usd"),
            ("worker peak RSS (MB)", "peak_rss_mb"),
            ("worker peak RSS submitting remote batches (MB)", "peak_rss_submitting_mb"),
            ("worker peak RSS in the create call (MB)", "peak_rss_creating_mb"),
            ("worker peak RSS streaming remote results (MB)", "peak_rss_streaming_results_mb"),
            ("worker RSS before the run (MB)", "rss_before_run_mb"), ("load average before -> after", None)]
    lines = ["| | " + " | ".join(r["mode"] for r in results) + " |", "| --- |" + " --- |" * len(results)]
    for label, key in rows:
        cells = []
        for r in results:
            if label.startswith("done"):
                cells.append(f"{r['done']:,} / {r['failed']:,}")
            elif label.startswith("input"):
                cells.append(f"{r['input_tokens']:,} / {r['output_tokens']:,}")
            elif label.startswith("cache"):
                cells.append(f"{r['cache_read_tokens']:,} / {r['cache_creation_tokens']:,}")
            elif label.startswith("load"):
                la = r["load_avg"]
                cells.append(f"{la[0]} / {la[1]} / {la[2]} -> {la[3]} / {la[4]} / {la[5]}")
            else:
                value = r[key]  # type: ignore[index]
                cells.append("—" if value is None else f"{value:,}" if isinstance(value, int) else str(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--mode", choices=("both", *MODES), default="both")
    ap.add_argument("--template", default=CACHED, help=f"{CACHED!r} (a cacheable system prompt) or a template name")
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--max-attempts", type=int, default=5,
                    help="the worker's attempts per item (settings default 3): a Message Batches item errored "
                         "three times in a row (0.05^3 of them at 5 %%) would fail, and the modes would not compare")
    ap.add_argument("--sqlite-cache-mb", type=int,
                    help="the worker's SQLite page cache per connection (default: the settings' "
                         "worker_sqlite_cache_mb, 4 MB; 0: the app's sqlite_cache_mb, 64 MB)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.n, args.template)))
        return 0
    results = [_run_mode(mode, args) for mode in (MODES if args.mode == "both" else (args.mode,))]
    summary: dict[str, Any] = {"modes": results}
    lines = [_table(results)]
    if len(results) == 2:
        online, batch = results
        ratio = batch["cost_usd"] / online["cost_usd"]
        summary["cost_ratio_batch_to_online"] = round(ratio, 5)
        summary["price_ratio_same_usage"] = round(batch["cost_usd"] / batch["cost_at_online_prices_usd"], 5)
        lines.append(f"cost ratio batch / online: {ratio:.3%} (target 50 % +- 1 %: "
                     f"{'ok' if abs(ratio - 0.5) <= 0.01 else 'MISSED'}); the batch's own usage at online prices: "
                     f"{summary['price_ratio_same_usage']:.3%}")
    streaming = next((r["peak_rss_streaming_results_mb"] for r in results if r["mode"] == "message_batches"), None)
    if streaming is not None:
        summary["streaming_peak_under_300_mb"] = streaming < 300
        lines.append(f"worker peak RSS streaming results: {streaming} MB (target < 300 MB: "
                     f"{'ok' if streaming < 300 else 'MISSED'})")
    if args.json:
        print(json.dumps(summary))
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
