"""Benchmark: N generations against a rate-limited, faulty sandbox — our client vs the plain SDK.

    .venv/bin/python bench/resilience.py [--n 1000] [--rpm 600] [--latency-ms 300] [--fault-rate 0.2]
                                         [--concurrency 16] [--faults status|5xx] [--skip-baseline]

Each run gets its own sandbox process (`python -m core sandbox --rpm R --latency-ms L`), so
the two runs start from the same state: a full minute's allowance and the same seed.

- ours: `agenerate_conversation` through core.llm (limiter -> breaker -> tenacity retries,
  SDK retries off) from a thread pool; a call refused by an open breaker waits out the
  cool-down and goes again, as a batch worker does.
- baseline: `anthropic.Anthropic(base_url=...)` with its default retries, `messages.create`
  from a thread pool of the same size, the reply parsed with the same parser.

Faults: `--faults status` (default) is the sandbox's fault_rate, spread evenly over
429/500/503/529; `--faults 5xx` spreads it over 500/503/529 only. Prints success rate,
wall time against the ideal N / RPM, 429s received, retries and request rate; `--json`
prints the figures as JSON too. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ---- sandbox process ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """A `python -m core sandbox` process with faults set over its admin endpoint."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "ANTHROPIC_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core", "sandbox", "--port", str(self.port), "--rpm", str(args.rpm),
             "--latency-ms", str(args.latency_ms), "--tokens-per-s", str(args.tokens_per_s),
             "--seed", str(args.seed)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        if args.faults == "5xx":
            share = args.fault_rate / 3
            self.configure(rate_500=share, rate_503=share, rate_529=share, retry_after_s=1)
        else:
            self.configure(fault_rate=args.fault_rate, retry_after_s=1)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the sandbox did not start")

    def configure(self, **changes: Any) -> None:
        req = urllib.request.Request(f"{self.base_url}/_sandbox/config", data=json.dumps(changes).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=5).close()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/stats", timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ---- the workload ---------------------------------------------------------------------------
def _all_params(n: int, turns: int) -> list[Any]:
    from core.generation import TEMPLATES, GenerationParams

    templates = list(TEMPLATES.values())
    out = []
    for i in range(n):
        t = templates[i % len(templates)]
        out.append(GenerationParams(t.name, t.personas[i % len(t.personas)], t.emotions[i % len(t.emotions)],
                                    t.topics[i % len(t.topics)], turns))
    return out


def run_ours(args: argparse.Namespace, sandbox: Sandbox) -> dict[str, Any]:
    from core.config import override_settings
    from core.errorlog import shutdown
    from core.errors import AppError
    from core.generation.service import agenerate_conversation
    from core.llm.client import ClaudeClient
    from core.llm.loops import run_sync
    from core.resilience import CircuitOpenError

    override_settings(
        rate_limit_rpm=args.rpm, rate_limit_input_tpm=10**9, rate_limit_output_tpm=10**9,
        retry_max_attempts=args.attempts, breaker_failure_threshold=args.breaker_threshold, retry_instant=False)
    client = ClaudeClient(provider="endpoint", base_url=sandbox.base_url, api_key="sk-bench")
    outcome: Counter[str] = Counter()
    attempts = Counter[str]()
    lock = threading.Lock()

    def one(params: Any) -> None:
        while True:
            try:
                result = run_sync(agenerate_conversation(params, client=client, component="bench.resilience"))
            except CircuitOpenError as exc:
                with lock:
                    outcome["breaker_waits"] += 1
                time.sleep(max(exc.retry_after_s or 0.0, 0.05))
                continue
            except AppError as exc:
                with lock:
                    outcome[f"failed:{exc.code}"] += 1
                return
            with lock:
                outcome["ok"] += 1
                attempts["retries"] += result.llm.attempts - 1
                attempts["invalid"] += result.invalid_attempts
            return

    params = _all_params(args.n, args.turns)
    started = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, params))
    wall = time.monotonic() - started
    client.close()
    shutdown()
    return _figures("ours", args, sandbox, wall, outcome, attempts)


def run_baseline(args: argparse.Namespace, sandbox: Sandbox) -> dict[str, Any]:
    import anthropic

    from core.errors import GenerationError
    from core.generation import build_prompt, parse_conversation
    from core.llm.pricing import DEFAULT_MODEL

    sdk = anthropic.Anthropic(base_url=sandbox.base_url, api_key="sk-bench")  # default max_retries
    outcome: Counter[str] = Counter()
    lock = threading.Lock()

    def one(params: Any) -> None:
        system, user = build_prompt(params)
        try:
            message = sdk.messages.create(model=DEFAULT_MODEL, max_tokens=4096, system=system,
                                          messages=[{"role": "user", "content": user}])
            text = "".join(b.text for b in message.content if b.type == "text")
            parse_conversation(text, params.turns)
        except anthropic.APIStatusError as exc:
            with lock:
                outcome[f"failed:{exc.status_code}"] += 1
            return
        except anthropic.APIError as exc:
            with lock:
                outcome[f"failed:{type(exc).__name__}"] += 1
            return
        except GenerationError:
            with lock:
                outcome["failed:invalid_response"] += 1
            return
        with lock:
            outcome["ok"] += 1

    params = _all_params(args.n, args.turns)
    started = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, params))
    wall = time.monotonic() - started
    sdk.close()
    return _figures("baseline", args, sandbox, wall, outcome, Counter())


def _figures(name: str, args: argparse.Namespace, sandbox: Sandbox, wall: float, outcome: Counter[str],
             attempts: Counter[str]) -> dict[str, Any]:
    stats = sandbox.stats()
    ideal = args.n / args.rpm * 60
    requests = int(stats["messages_requests"])
    return {
        "run": name,
        "n": args.n,
        "ok": outcome["ok"],
        "success_rate": outcome["ok"] / args.n,
        "failures": {k: v for k, v in outcome.items() if k.startswith("failed:")},
        "wall_s": round(wall, 1),
        "ideal_s": round(ideal, 1),
        "ideal_over_wall": round(ideal / wall, 3),
        "generations_per_min": round(outcome["ok"] / wall * 60, 1),
        "requests": requests,
        "requests_per_min": round(requests / wall * 60, 1),
        "request_rate_of_limit": round(requests / wall * 60 / args.rpm, 3),
        "status_429_received": int(stats["by_status"].get("429", 0)),
        "limit_429s": int(stats["rate_limited"]),
        "injected_faults": {k: v for k, v in stats["faults"].items() if v},
        "retries": requests - args.n,
        "client_retries_seen": attempts["retries"] if name == "ours" else None,
        "invalid_replies_retried": attempts["invalid"] if name == "ours" else None,
        "breaker_waits": outcome["breaker_waits"] if name == "ours" else None,
    }


def _print(fig: dict[str, Any]) -> None:
    print(f"\n== {fig['run']} ==")
    print(f"success        {fig['ok']}/{fig['n']} = {fig['success_rate']:.2%}  failures {fig['failures'] or 'none'}")
    print(f"wall time      {fig['wall_s']} s vs ideal {fig['ideal_s']} s (N / RPM) -> "
          f"{fig['ideal_over_wall']:.1%} of the rate limit in conversations")
    print(f"requests       {fig['requests']} ({fig['requests_per_min']}/min = {fig['request_rate_of_limit']:.1%} of "
          f"the RPM limit), retries {fig['retries']}")
    print(f"429s received  {fig['status_429_received']} (of which from the real limit: {fig['limit_429s']})")
    print(f"faults         {fig['injected_faults']}")
    if fig["run"] == "ours":
        print(f"breaker waits  {fig['breaker_waits']}, invalid replies retried {fig['invalid_replies_retried']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--tokens-per-s", type=float, default=400.0)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--faults", choices=("status", "5xx"), default="status")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--attempts", type=int, default=6, help="our retry_max_attempts")
    parser.add_argument("--breaker-threshold", type=int, default=200,
                        help="our breaker_failure_threshold (failures per window)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="bench-resilience-")
    # our run logs its failed attempts to a throw-away SQLite store, as the app would
    os.environ.update({"STUDIO_DATA_DIR": data_dir, "ENVIRONMENT": "test"})
    for key in ("DATABASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        os.environ.pop(key, None)
    from core.store import get_engine, migrate  # imported once the environment names the store

    migrate(get_engine())  # every entry point migrates before it records: the log's writer does not
    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    print(f"N={args.n} rpm={args.rpm} latency={args.latency_ms} ms tokens/s={args.tokens_per_s} "
          f"faults={args.fault_rate:.0%} ({args.faults}) concurrency={args.concurrency} turns={args.turns}")
    figures = []
    for runner, skip in ((run_ours, args.skip_ours), (run_baseline, args.skip_baseline)):
        if skip:
            continue
        sandbox = Sandbox(args)
        try:
            fig = runner(args, sandbox)
        finally:
            sandbox.stop()
        _print(fig)
        figures.append(fig)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
