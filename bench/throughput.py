"""Benchmark: batches at the rate limit behind an independent fault-injecting, rate-enforcing proxy.

    .venv/bin/python bench/throughput.py [--items 300] [--rpm 1200] [--concurrency 8]
        [--faults 0,0.2] [--headers full,partial,none] [--runners ours,sdk,curator] [--write-results]

One `python -m core sandbox --latency-ms 100 --tokens-per-s 10000` (no limits, no faults of its
own) sits behind `bench/rate_proxy.py` (a token bucket of --rpm with 1 s of burst; 429 with
retry-after and no rate-limit headers, 500, 529 and dropped connections at the fault rate; full,
partial or no rate-limit headers). Each run gets a fresh proxy, so each starts with a full bucket.

Runners:
- ours: the project's batch path as a user runs it: `python -m core batch create` then
  `python -m core worker --once`, with STUDIO_RATE_LIMIT_RPM=--rpm and the token limits raised
  out of the way, batch and worker concurrency --concurrency, a fresh SQLite database each run;
- sdk: the plain anthropic SDK with its default retries, --concurrency threads, messages.create;
- curator: bespokelabs-curator when it is importable (it is no dependency of the project);
  otherwise skipped with a note.

Figures per run: succeeded items; wall time (first request the proxy charged to its last answer)
and, for ours, the end-to-end time including process start; share of the limit = requests the
proxy charged (faulted ones included: the API counts them) / (limit x wall time); limit-caused
429s; requests per item = charged requests / succeeded items. Quick subset: e.g.
`--items 100 --faults 0.2 --headers partial --runners ours`. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_TEMPLATE = "customer_support"
_TURNS = 6


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "ANTHROPIC_", "DATABASE_URL"))}


class _Process:
    """A child process that prints its base URL on its first line of stdout."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"{argv[1:3]} did not start: {line!r}")
        self.base_url = line.split()[-1].rstrip("/")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.base_url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_sandbox() -> _Process:
    return _Process([sys.executable, "-m", "core", "sandbox", "--port", "0", "--latency-ms", "100",
                     "--tokens-per-s", "10000"], _clean_env())


def start_proxy(upstream: str, args: argparse.Namespace, fault_rate: float, headers: str) -> _Process:
    return _Process([sys.executable, str(ROOT / "bench" / "rate_proxy.py"), "--upstream", upstream,
                     "--rpm", str(args.rpm), "--fault-rate", str(fault_rate), "--headers", headers,
                     "--seed", str(args.seed), "--idle-seconds", "60", "--max-seconds", str(args.timeout_s + 60)],
                    _clean_env())


# ---- runners ------------------------------------------------------------------------------
def run_ours(base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as data_dir:
        env = {**_clean_env(), "ANTHROPIC_BASE_URL": base_url, "STUDIO_DATA_DIR": data_dir,
               "STUDIO_RATE_LIMIT_RPM": str(args.rpm), "STUDIO_RATE_LIMIT_INPUT_TPM": str(10**9),
               "STUDIO_RATE_LIMIT_OUTPUT_TPM": str(10**9), "STUDIO_UI_BACKGROUND_WORKER": "false",
               **dict(pair.split("=", 1) for pair in args.ours_env)}
        created = subprocess.run(
            [sys.executable, "-m", "core", "batch", "create", "--template", _TEMPLATE, "--count", str(args.items),
             "--concurrency", str(args.concurrency), "--turns", str(_TURNS)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        batch_id = created.stdout.strip().splitlines()[-1]
        started = time.monotonic()
        try:
            subprocess.run([sys.executable, "-m", "core", "worker", "--once", "--concurrency", str(args.concurrency)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout_s)
            note = ""
        except subprocess.TimeoutExpired:
            note = f"worker stopped after {args.timeout_s:.0f} s"
        e2e = time.monotonic() - started
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "core", "batch", "status", batch_id, "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout)
        return {"succeeded": int(status["done"]), "failed": int(status["failed"]), "e2e_s": e2e, "note": note}


def run_sdk(base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import anthropic

    from core.errors import GenerationError
    from core.generation import GenerationParams, build_prompt, get_template, parse_conversation
    from core.llm.pricing import DEFAULT_MODEL

    sdk = anthropic.Anthropic(base_url=base_url, api_key="sk-bench")  # the SDK's default retries
    tmpl = get_template(_TEMPLATE)
    outcome: Counter[str] = Counter()
    lock = threading.Lock()

    def one(i: int) -> None:
        params = GenerationParams(_TEMPLATE, tmpl.personas[i % len(tmpl.personas)],
                                  tmpl.emotions[i % len(tmpl.emotions)], tmpl.topics[i % len(tmpl.topics)], _TURNS)
        system, user = build_prompt(params)
        try:
            message = sdk.messages.create(model=DEFAULT_MODEL, max_tokens=4096, system=system,
                                          messages=[{"role": "user", "content": user}])
            parse_conversation("".join(b.text for b in message.content if b.type == "text"), params.turns)
            key = "ok"
        except anthropic.APIStatusError as exc:
            key = f"failed:{exc.status_code}"
        except anthropic.APIError as exc:
            key = f"failed:{type(exc).__name__}"
        except GenerationError:
            key = "failed:invalid"
        with lock:
            outcome[key] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, range(args.items)))
    e2e = time.monotonic() - started
    sdk.close()
    failures = ", ".join(f"{k[7:]}: {v}" for k, v in sorted(outcome.items()) if k != "ok")
    return {"succeeded": outcome["ok"], "failed": args.items - outcome["ok"], "e2e_s": e2e, "note": failures}


def run_curator(base_url: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """None: skipped. curator is no dependency of the project, and its LLM class and backend
    parameters differ between versions, so it is driven only where someone wires it for the
    version at hand; this script says whether it is importable."""
    try:
        from bespokelabs import curator  # noqa: F401 - only whether it is installed
    except ImportError:
        _SKIPPED["curator"] = "not importable here (optional, not a dependency): skipped"
        return None
    _SKIPPED["curator"] = "importable, but this script does not drive it: skipped"
    return None


_SKIPPED: dict[str, str] = {}
RUNNERS = {"ours": run_ours, "sdk": run_sdk, "curator": run_curator}


# ---- one run ------------------------------------------------------------------------------
def one_run(sandbox: _Process, args: argparse.Namespace, runner: str, fault_rate: float,
            headers: str) -> dict[str, Any] | None:
    proxy = start_proxy(sandbox.base_url, args, fault_rate, headers)
    try:
        result = RUNNERS[runner](proxy.base_url, args)
        stats = proxy.get("/_proxy/stats")
    finally:
        proxy.stop()
    if result is None:
        return None
    first, last = stats["first_accepted_at"], stats["last_answered_at"]
    wall = (last - first) if first is not None and last is not None else float("nan")
    accepted = int(stats["accepted"])
    rate = args.rpm / 60.0
    return {
        "runner": runner, "faults": fault_rate, "headers": headers, "items": args.items, **result,
        "wall_s": wall, "ideal_s": accepted / rate, "share": accepted / (rate * wall) if wall > 0 else float("nan"),
        "limit_429": int(stats["limit_429"]), "accepted": accepted,
        "requests_per_item": accepted / result["succeeded"] if result["succeeded"] else float("nan"),
        "accepted_per_second": stats["accepted_per_second"],
        "faulted": sum(int(stats[k]) for k in ("fault_429", "fault_500", "fault_529", "fault_drop")),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["| runner | faults | headers | succeeded | wall s | end-to-end s | share of the limit | limit 429s | "
           "requests/item (bound) | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bound = 1 / (1 - r["faults"]) * 1.02
        out.append(f"| {r['runner']} | {r['faults']:.0%} | {r['headers']} | {r['succeeded']}/{r['items']} | "
                   f"{r['wall_s']:.1f} | {r['e2e_s']:.1f} | {r['share']:.0%} | {r['limit_429']} | "
                   f"{r['requests_per_item']:.3f} ({bound:.3f}) | {r['note']} |")
    return "\n".join(out)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--faults", default="0,0.2", help="comma-separated fault rates")
    parser.add_argument("--headers", default="full,partial,none", help="comma-separated header modes")
    parser.add_argument("--runners", default="ours,sdk,curator", help="comma-separated: ours, sdk, curator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=300.0, help="a run still going after this is stopped")
    parser.add_argument("--write-results", action="store_true", help="append the table to bench/RESULTS.md")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--ours-env", action="append", default=[], metavar="STUDIO_X=V",
                        help="an extra setting for our worker (repeatable), to compare settings")
    args = parser.parse_args()
    faults = [float(f) for f in args.faults.split(",") if f.strip()]
    modes = [m.strip() for m in args.headers.split(",") if m.strip()]
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    load_before = _uptime()
    print(f"# {args.items} items, {args.rpm} RPM, concurrency {args.concurrency}; {load_before}", flush=True)
    rows: list[dict[str, Any]] = []
    sandbox = start_sandbox()
    try:
        for runner in runners:
            for fault_rate in faults:
                for mode in modes:
                    row = one_run(sandbox, args, runner, fault_rate, mode)
                    if row is None:
                        print(f"{runner}: {_SKIPPED.get(runner, 'skipped')}", flush=True)
                        break
                    rows.append(row)
                    print(f"{runner:8} faults {fault_rate:.0%} {mode:8} ok {row['succeeded']}/{args.items} "
                          f"wall {row['wall_s']:.1f} s (ideal {row['ideal_s']:.1f}, e2e {row['e2e_s']:.1f}) "
                          f"share {row['share']:.0%} limit-429 {row['limit_429']} "
                          f"req/item {row['requests_per_item']:.3f} {row['note']}", flush=True)
                else:
                    continue
                break
    finally:
        sandbox.stop()
    load_after = _uptime()
    table = _table(rows)
    print(table)
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.write_results:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = (f"\n## Throughput at the rate limit behind bench/rate_proxy.py ({stamp})\n\n"
                f"`.venv/bin/python bench/throughput.py --items {args.items} --faults {args.faults} "
                f"--headers {args.headers} --runners {args.runners}`; {args.rpm} RPM proxy bucket (1 s burst), "
                f"concurrency {args.concurrency}, sandbox `--latency-ms 100 --tokens-per-s 10000`, "
                f"{platform.python_version()}. Load: before `{load_before}`, after `{load_after}`.\n"
                "Share of the limit = requests the proxy charged (faulted ones included) / (limit x wall time, "
                "first charged request to last answer); requests/item = charged requests / succeeded items, "
                "bound = 1/(1 - fault rate) + 2 %.\n\n" + table + "\n")
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
