"""`python -m core sandbox`: run the offline model server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from core.cli import print_error
from core.llm.sandbox import SandboxConfig, SandboxServer


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sandbox",
        help="run the offline Anthropic-compatible model server (faults and limits on demand)",
        description="Serve the Messages API on 127.0.0.1 until interrupted. Defaults come from the "
        "STUDIO_SANDBOX_* settings. Faults and limits can be changed while it runs with "
        "POST /_sandbox/config; GET /_sandbox/stats shows the counters, GET /_sandbox/batch_requests "
        "how many Message Batches requests carried each custom_id.",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: a free port)")
    p.add_argument("--fault-rate", type=float, help="share of calls answered 429/500/503/529 (0-1)")
    p.add_argument("--rpm", type=int, help="requests per minute (0: no limit)")
    p.add_argument("--tpm", type=int, help="input AND output tokens per minute, each (0: no limit)")
    p.add_argument("--input-tpm", type=int, help="input tokens per minute (overrides --tpm)")
    p.add_argument("--output-tpm", type=int, help="output tokens per minute (overrides --tpm)")
    p.add_argument("--latency-ms", type=int, help="wait before the first byte of an answer")
    p.add_argument("--tokens-per-s", type=float, help="generation speed, streaming and not")
    p.add_argument("--seed", type=int, help="seed for the text and the fault sequence")
    p.add_argument("--api-key", help="require this x-api-key (default: any key is accepted)")
    p.add_argument("--batch-processing-s", type=float, help="a message batch ends this long after creation")
    p.add_argument("--batch-error-rate", type=float,
                   help="share of batch requests errored with a retryable overloaded_error or api_error (0-1)")
    p.add_argument("--batch-invalid-rate", type=float,
                   help="share of batch requests errored with invalid_request_error (0-1)")
    p.add_argument("--batch-expired-rate", type=float, help="share of batch requests expired (0-1)")
    p.add_argument("--batch-canceled-rate", type=float, help="share of batch requests canceled (0-1)")
    p.set_defaults(func=_run, store="none")


def _run(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {"port": args.port}
    if args.tpm is not None:
        changes["input_tpm"] = changes["output_tpm"] = args.tpm
    for option, name in (
        ("fault_rate", "fault_rate"),
        ("rpm", "rpm"),
        ("input_tpm", "input_tpm"),
        ("output_tpm", "output_tpm"),
        ("latency_ms", "latency_ms"),
        ("tokens_per_s", "tokens_per_s"),
        ("seed", "seed"),
        ("api_key", "api_key_required"),
        ("batch_processing_s", "batch_processing_s"),
        ("batch_error_rate", "batch_error_rate"),
        ("batch_invalid_rate", "batch_invalid_rate"),
        ("batch_expired_rate", "batch_expired_rate"),
        ("batch_canceled_rate", "batch_canceled_rate"),
    ):
        value = getattr(args, option)
        if value is not None:
            changes[name] = value
    try:
        config = SandboxConfig.from_settings(**changes)
    except ValueError as exc:
        print_error(f"error: {exc}")
        return 2
    server = SandboxServer(config)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        base_url = server.start()
        # the first line is the contract with scripts and tests that start the sandbox as a process
        print(base_url, flush=True)
        print(f"sandbox: serving the Messages API at {base_url} (admin: {base_url}/_sandbox/config); "
              "Ctrl-C stops it", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = server.stats()
    print(f"sandbox: stopped after {stats['messages_requests']} message calls "
          f"({stats['faults_injected']} faults injected, {stats['rate_limited']} rate limited)",
          file=sys.stderr, flush=True)
    return 0
