"""Benchmark: how many items per second one worker process commits when the model answers at once.

    .venv/bin/python bench/worker_overhead.py [--items 20000] [--concurrency 16] [--db sqlite,postgres]
                                              [--upstream stub|sandbox] [--baseline TREE] [--json]

The upstream answers instantly, so what is measured is our own cost per item: the worker's
claim, the SDK over real HTTP (streamed, as batch items are), parse, limiter, breaker and the
item's commit. Two upstreams:

- ``stub`` (default): a minimal loopback HTTP/1.1 server in its own process (this file with
  ``--serve-stub``) that answers the Messages API from bytes built once at start, streaming
  SSE or plain JSON as asked, so the numbers are not the sandbox's cost. Its deltas are
  three words each, as the sandbox sends them and close to what the API sends.
- ``sandbox``: ``python -m core sandbox --latency-ms 0 --tokens-per-s 1e9`` with no limits of its own.

One ``python -m core worker --once --concurrency C`` process works one batch of --items items
on a fresh SQLite file, then on a fresh Postgres database. Rate limits are raised out of the
way through the environment. While it runs, /proc/<pid>/status (VmRSS) and /proc/<pid>/stat
(CPU time) of the worker are sampled, and a count of the batch's settled items says how many
are committed. Printed: items/s over the run (from the first commit to the last), wall and
CPU ms per item, and resident memory at the first commit and after 5k / 10k / 20k items.

``--baseline TREE`` runs the same measurement first with the worker started from another
checkout (e.g. one of main before a change), so both figures come from one run on one machine;
only ratios between them mean anything here. ``--profile FILE`` runs the worker under
cProfile and writes its stats there (slower; for finding the costs, not for the figures).
Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARKS = (5_000, 10_000, 20_000)
TURNS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the instant upstream ------------------------------------------------------------------
def _reply_text(turns: int) -> str:
    sentence = ("I have a question about the order I placed last week and the delivery date that was "
                "promised to me, because it has not arrived yet and nobody has written to me about it")
    return "\n\n".join(f"{'User' if i % 2 == 0 else 'Assistant'}: {sentence} ({i + 1})." for i in range(turns))


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _bodies(model: str) -> tuple[bytes, bytes]:
    """(plain JSON body, SSE body) of one reply, built once."""
    text = _reply_text(TURNS)
    words = text.split(" ")
    pieces = [" ".join(words[i:i + 3]) + (" " if i + 3 < len(words) else "") for i in range(0, len(words), 3)]
    usage = {"input_tokens": 120, "output_tokens": len(words), "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    message = {"id": "msg_01bench", "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": usage}
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [_sse("message_start", {"type": "message_start", "message": start}),
              _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})]
    events += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events += [_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               _sse("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": len(words)}}),
               _sse("message_stop", {"type": "message_stop"})]
    return json.dumps(message).encode(), b"".join(events)


def _response(body: bytes, content_type: str) -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
            f"request-id: req_bench\r\nconnection: keep-alive\r\n\r\n").encode() + body


def serve_stub(port: int, model: str) -> None:
    """Answer every POST with the same reply (streamed when the body asks for it), on keep-alive connections."""
    plain, streamed = _bodies(model)
    replies = {False: _response(plain, "application/json"), True: _response(streamed, "text/event-stream")}

    async def _conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                writer.write(replies[b'"stream":true' in body.replace(b" ", b"")])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _main() -> None:
        server = await asyncio.start_server(_conn, "127.0.0.1", port, backlog=256)
        async with server:
            await server.serve_forever()

    asyncio.run(_main())


class Upstream:
    """The stub or the sandbox, in a process of its own."""

    def __init__(self, kind: str, model: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "ANTHROPIC_"))}
        if kind == "stub":
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-stub", str(self.port), "--model", model]
        else:
            cmd = [sys.executable, "-m", "core", "sandbox", "--port", str(self.port), "--latency-ms", "0",
                   "--tokens-per-s", "1000000000", "--rpm", "0", "--tpm", "0"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the {kind} upstream did not start (exit code {self.proc.poll()})")

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ---- one measured run ----------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _env(database_url: str, base_url: str, sqlite_cache_mb: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "ANTHROPIC_", "DATABASE_"))}
    big = str(10**9)
    env.update(DATABASE_URL=database_url, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="",
               STUDIO_RATE_LIMIT_RPM=big, STUDIO_RATE_LIMIT_INPUT_TPM=big, STUDIO_RATE_LIMIT_OUTPUT_TPM=big,
               STUDIO_CLEANUP_INTERVAL_S="0", STUDIO_ALERT_WEBHOOK_URL="", ENVIRONMENT="production")
    if sqlite_cache_mb is not None:
        env["STUDIO_SQLITE_CACHE_MB"] = str(sqlite_cache_mb)
    return env


def _create_batch(tree: Path, env: dict[str, str], items: int, concurrency: int) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "core", "batch", "create", "--template", "customer_support", "--count", str(items),
         "--concurrency", str(concurrency), "--turns", str(TURNS), "--name", "worker overhead bench"],
        cwd=tree, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _committed(engine: Any, batch_id: str) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        # from the items themselves (an index-only count), so any checkout's schema answers it
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM batch_items WHERE batch_id = :b AND status IN ('done', 'failed')"),
            {"b": batch_id}).scalar() or 0)


def measure(tree: Path, database_url: str, upstream: Upstream, args: argparse.Namespace,
            profile: str | None = None) -> dict[str, Any]:
    import sqlalchemy as sa

    env = _env(database_url, upstream.base_url, args.sqlite_cache_mb)
    batch_id = _create_batch(tree, env, args.items, args.concurrency)
    engine = sa.create_engine(database_url)
    cmd = [sys.executable, "-m", "core", "worker", "--once", "--concurrency", str(args.concurrency)]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "core", "worker", "--once",
               "--concurrency", str(args.concurrency)]
    up_cpu0 = upstream.cpu_s()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first: tuple[float, float, float] | None = None  # (time, cpu, rss) at the first commit
    rss_at: dict[int, float] = {}
    last = (started, 0.0, 0)
    peak = 0.0
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            try:
                rss, cpu = _rss_mb(proc.pid), _cpu_s(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            done = _committed(engine, batch_id)
            now = time.monotonic()
            peak = max(peak, rss)
            if done and first is None:
                first = (now, cpu, rss)
            for mark in MARKS:
                if mark not in rss_at and done >= mark:
                    rss_at[mark] = rss
            if done > last[2]:
                last = (now, cpu, done)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    done = _committed(engine, batch_id)
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM batch_jobs WHERE id = :b"), {"b": batch_id}).scalar()
        ok = conn.execute(sa.text("SELECT count(*) FROM batch_items WHERE batch_id = :b AND status = 'done'"),
                          {"b": batch_id}).scalar()
    engine.dispose()
    t0, cpu0, rss0 = first or (started, 0.0, 0.0)
    span = max(last[0] - t0, 1e-9)
    counted = max(last[2] - (1 if first else 0), 1)
    return {
        "tree": str(tree), "db": database_url.split(":", 1)[0], "items": args.items, "done": int(ok or 0),
        "committed": done, "status": status, "exit": proc.returncode,
        "items_per_s": round(counted / span, 1),
        "wall_ms_per_item": round(1000 * span / counted, 2),
        "worker_cpu_ms_per_item": round(1000 * (last[1] - cpu0) / counted, 2),
        "upstream_cpu_ms_per_item": round(1000 * (upstream.cpu_s() - up_cpu0) / max(done, 1), 2),
        "rss_mb": {"first": round(rss0, 1), **{f"{m // 1000}k": round(v, 1) for m, v in rss_at.items()},
                   "peak": round(peak, 1)},
        "rss_bytes_per_item_after_5k": _growth(rss_at),
        "stderr_tail": (stderr or "")[-400:] if proc.returncode else "",
    }


def _growth(rss_at: dict[int, float]) -> int | None:
    """RSS bytes per item from the 5k mark to the last one reached (warm-up excluded), or None."""
    marks = sorted(rss_at)
    if len(marks) < 2:
        return None
    return round((rss_at[marks[-1]] - rss_at[marks[0]]) * 1024 * 1024 / (marks[-1] - marks[0]))


def _database(kind: str, tmp: Path) -> tuple[str, Any]:
    """(url, drop) for a fresh database of `kind`."""
    if kind == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    import sqlalchemy as sa

    name = f"bench_worker_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def _drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", _drop


def _line(r: dict[str, Any], base: dict[str, Any] | None) -> str:
    ratio = f"  x{r['items_per_s'] / base['items_per_s']:.2f}" if base else ""
    rss = " ".join(f"{k}={v}" for k, v in r["rss_mb"].items())
    if r["rss_bytes_per_item_after_5k"] is not None:
        rss += f" (after 5k: {r['rss_bytes_per_item_after_5k']} B/item)"
    bad = "" if r["status"] == "completed" and r["done"] == r["items"] else \
        f"  !! status={r['status']} done={r['done']}/{r['items']} exit={r['exit']} {r['stderr_tail']}"
    return (f"{r['db']:<18} {r['items_per_s']:>8.1f} items/s{ratio}  wall {r['wall_ms_per_item']:.2f} ms/item  "
            f"worker cpu {r['worker_cpu_ms_per_item']:.2f} ms/item  upstream cpu "
            f"{r['upstream_cpu_ms_per_item']:.2f} ms/item  RSS MB {rss}{bad}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--upstream", choices=("stub", "sandbox"), default="stub")
    ap.add_argument("--model", default="claude-sonnet-5-5")
    ap.add_argument("--sqlite-cache-mb", type=int, help="the worker's SQLite page cache per connection "
                    "(default: the setting's); the cache fills as the database grows, which shows as RSS")
    ap.add_argument("--baseline", help="another checkout whose worker is measured first, for ratios")
    ap.add_argument("--profile", help="write the worker's cProfile stats here (first database only)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_stub:
        serve_stub(args.serve_stub, args.model)
        return 0
    sys.path.insert(0, str(ROOT))
    trees = ([("baseline", Path(args.baseline).resolve())] if args.baseline else []) + [("this tree", ROOT)]
    print(f"worker overhead: {args.items} items, concurrency {args.concurrency}, upstream {args.upstream}, "
          f"python {platform.python_version()}, {os.cpu_count()} cpus")
    upstream = Upstream(args.upstream, args.model)
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in args.db.split(","):
                base: dict[str, Any] | None = None
                for label, tree in trees:
                    url, drop = _database(kind.strip(), Path(tmp))
                    try:
                        profile = args.profile if args.profile and label == "this tree" and not results else None
                        r = measure(tree, url, upstream, args, profile)
                    finally:
                        drop()
                    r["label"] = label
                    results.append(r)
                    print(f"{label:<10} " + _line(r, base if label == "this tree" else None), flush=True)
                    if label == "baseline":
                        base = r
    finally:
        upstream.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
