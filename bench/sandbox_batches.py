"""Benchmark: one Message Batch of N requests through the sandbox, over HTTP, with the real SDK.

    .venv/bin/python bench/sandbox_batches.py [--n 10000] [--error-rate 0.1] [--expired-rate 0.05]
                                              [--invalid-rate 0.02] [--json]

All requests share a system prompt with a 1-hour cache breakpoint (past the model's minimum), as
batch mode sends them. Prints the time to create the batch, to end it (the first retrieve after
its processing time decides every outcome), and to stream its results through
`client.messages.batches.results`, the outcome counts, the cache tokens the results report, and
the cost of the reported usage online and at the batch price. The sandbox runs in this process,
so the peak RSS printed is the sandbox's and the client's together. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anthropic  # noqa: E402

from core.llm.pricing import price  # noqa: E402
from core.llm.sandbox import SandboxConfig, SandboxServer  # noqa: E402

MODEL = "claude-sonnet-5-5"
SYSTEM = "You are a careful support agent who follows the handbook to the letter. " * 90


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--error-rate", type=float, default=0.10)
    ap.add_argument("--expired-rate", type=float, default=0.05)
    ap.add_argument("--invalid-rate", type=float, default=0.02)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    srv = SandboxServer(SandboxConfig(seed=1, batch_processing_s=0.0, batch_error_rate=args.error_rate,
                                      batch_expired_rate=args.expired_rate, batch_invalid_rate=args.invalid_rate))
    client = anthropic.Anthropic(base_url=srv.start(), api_key="sandbox", max_retries=0, timeout=600)
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    requests = [{"custom_id": f"item-{i}", "params": {
        "model": MODEL, "max_tokens": 1500, "system": system,
        "messages": [{"role": "user", "content": f"Write the conversation.\nPersona: a nurse\nEmotion: calm\n"
                                                 f"Topic: topic {i}\nTurns: 6"}]}} for i in range(args.n)]
    body_mb = len(json.dumps({"requests": requests})) / 2**20
    t0 = time.monotonic()
    batch = client.messages.batches.create(requests=requests)
    t1 = time.monotonic()
    ended = client.messages.batches.retrieve(batch.id)
    t2 = time.monotonic()
    kinds: Counter[str] = Counter()
    usage: Counter[str] = Counter()
    for line in client.messages.batches.results(batch.id):
        kinds[line.result.type] += 1
        if line.result.type == "succeeded":
            u = line.result.message.usage
            usage.update(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                         cache_read_input_tokens=u.cache_read_input_tokens or 0,
                         cache_creation_input_tokens=u.cache_creation_input_tokens or 0)
    t3 = time.monotonic()
    srv.stop()
    online = price(MODEL, dict(usage), ttl="1h")
    batched = price(MODEL, dict(usage), mode="message_batches", ttl="1h")
    fig = {
        "requests": args.n, "body_mb": round(body_mb, 1), "create_s": round(t1 - t0, 2), "end_s": round(t2 - t1, 2),
        "results_s": round(t3 - t2, 2), "results_per_s": round(args.n / max(t3 - t2, 1e-9)),
        "status": ended.processing_status, "counts": dict(kinds), "usage": dict(usage),
        "cost_online_usd": round(online.total, 4), "cost_batch_usd": round(batched.total, 4),
        "batch_share": round(batched.total / online.total, 4) if online.total else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(f"{args.n:,} requests ({fig['body_mb']} MB): create {fig['create_s']} s, end {fig['end_s']} s, "
          f"results {fig['results_s']} s ({fig['results_per_s']:,}/s)")
    print(f"outcomes {dict(kinds)}")
    print(f"tokens {dict(usage)}")
    print(f"cost online ${fig['cost_online_usd']}, batch ${fig['cost_batch_usd']} (share {fig['batch_share']}); "
          f"peak RSS {fig['peak_rss_mb']} MB (sandbox and client)")
    if args.json:
        print(json.dumps(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
