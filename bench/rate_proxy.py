"""A fault-injecting, rate-enforcing HTTP proxy in front of an Anthropic-compatible server (benchmarks, tests).

    .venv/bin/python bench/rate_proxy.py --upstream http://127.0.0.1:8001 [--port 0] [--rpm 1200]
        [--burst-s 1.0] [--fault-rate 0.2] [--headers full|partial|none] [--seed 1] [--max-seconds 900]
        [--idle-seconds 120]

It prints its base URL on the first line of stdout, then serves until --max-seconds have passed or
nobody has called it for --idle-seconds (it stops by itself), on the loopback interface only, with
at most --max-connections requests at once (more are refused with a 503 that charges nothing).

It is independent of the sandbox's own fault injection and limits, and imitates how the real API
behaves rather than what our limiter expects:

- a token bucket of --rpm requests per minute holding --burst-s seconds of it, full at start. A
  request finding it empty gets a 429 ("limit-caused") with ``retry-after`` in whole seconds, and
  takes nothing from the bucket;
- every request the bucket admits is charged, whatever happens next (the API counts answered
  requests, errors included). A share --fault-rate of them then fails, spread evenly over: 429
  with ``retry-after: 1`` and no rate-limit headers (an organisation or acceleration limit), 500,
  529, and a dropped connection (closed before any answer);
- the rest are forwarded to --upstream and streamed back as they arrive;
- header modes for the ``anthropic-ratelimit-requests-*`` headers on every answer but the fault 429s:
  full (``-limit``, ``-remaining``, ``-reset`` as an RFC 3339 time, like the real API), partial
  (``-limit`` and ``-remaining`` without ``-reset``, plus an ``-output-tokens-reset`` without its
  ``-remaining``), none.

GET /_proxy/stats gives the counters as JSON: accepted (charged), limit_429, fault_429, fault_500,
fault_529, fault_drop, forwarded, refused_busy, first_accepted_at and last_answered_at (seconds on
the proxy's monotonic clock, for the share of the limit a client used) and accepted_per_second
(charged requests in each second after the first).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te",
               "trailer", "upgrade"}
_FAULTS = ("fault_429", "fault_500", "fault_529", "fault_drop")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Bucket:
    def __init__(self, rpm: int, burst_s: float) -> None:
        self.rpm = rpm
        self.rate = rpm / 60.0
        self.capacity = max(self.rate * burst_s, 1.0)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level < 1.0:
            return False
        self.level -= 1.0
        return True

    def retry_after_s(self) -> int:
        return max(1, math.ceil((1.0 - self.level) / self.rate))

    def headers(self, mode: str) -> dict[str, str]:
        prefix = "anthropic-ratelimit-requests-"
        remaining = str(max(0, math.floor(self.level)))
        if mode == "full":
            full_at = time.time() + (self.capacity - self.level) / self.rate
            return {prefix + "limit": str(self.rpm), prefix + "remaining": remaining, prefix + "reset": _rfc3339(full_at)}
        if mode == "partial":
            return {prefix + "limit": str(self.rpm), prefix + "remaining": remaining,
                    "anthropic-ratelimit-output-tokens-reset": _rfc3339(time.time() + 1.0)}
        return {}


class RateProxy:
    """The proxy's state: bucket, fault dice and counters, shared by the handler threads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        upstream = urlsplit(args.upstream)
        if upstream.hostname not in _LOOPBACK:
            raise SystemExit("--upstream must be on the loopback interface")
        self.upstream_host, self.upstream_port = upstream.hostname, upstream.port or 80
        self.bucket = _Bucket(args.rpm, args.burst_s)
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(args.max_connections)
        self.started = self.last_seen = time.monotonic()
        self.counts: dict[str, Any] = {k: 0 for k in ("accepted", "limit_429", "forwarded", "refused_busy",
                                                         "forward_errors", *_FAULTS)}
        self.counts["first_accepted_at"] = None
        self.counts["last_answered_at"] = None
        self.counts["accepted_per_second"] = []

    def verdict(self) -> tuple[str, dict[str, str], int]:
        """'limit', a fault name or 'forward'; the rate-limit headers to send; retry-after for a limit 429."""
        now = time.monotonic()
        with self.lock:
            self.last_seen = now
            if not self.bucket.take(now):
                self.counts["limit_429"] += 1
                return "limit", self.bucket.headers(self.args.headers), self.bucket.retry_after_s()
            self.counts["accepted"] += 1
            if self.counts["first_accepted_at"] is None:
                self.counts["first_accepted_at"] = now
            second = int(now - self.counts["first_accepted_at"])
            per_second = self.counts["accepted_per_second"]
            per_second.extend([0] * (second + 1 - len(per_second)))
            per_second[second] += 1
            headers = self.bucket.headers(self.args.headers)
            if self.rng.random() < self.args.fault_rate:
                fault = self.rng.choice(_FAULTS)
                self.counts[fault] += 1
                return fault, headers, 1
            return "forward", headers, 0

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def answered(self) -> None:
        with self.lock:
            self.counts["last_answered_at"] = time.monotonic()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counts, "accepted_per_second": list(self.counts["accepted_per_second"])}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped connection drops only it

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return  # quiet: the counters say what happened

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path == "/_proxy/stats":
            self._json(200, self.server.proxy.stats())
            return
        self._relay(b"")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self._relay(body)

    def _relay(self, body: bytes) -> None:
        proxy = self.server.proxy
        if not proxy.slots.acquire(blocking=False):
            proxy.count("refused_busy")
            self._json(503, _error("overloaded_error", "proxy busy"))
            return
        try:
            kind, headers, retry_after = proxy.verdict()
            if kind == "limit":
                self._json(429, _error("rate_limit_error", "Number of requests has exceeded your rate limit."),
                           {**headers, "retry-after": str(retry_after)})
            elif kind == "fault_429":
                self._json(429, _error("rate_limit_error", "Your organization's rate limit was exceeded."),
                           {"retry-after": "1"})
            elif kind == "fault_500":
                self._json(500, _error("api_error", "Internal server error (injected)."), headers)
            elif kind == "fault_529":
                self._json(529, _error("overloaded_error", "Overloaded (injected)."), headers)
            elif kind == "fault_drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._forward(body, headers)
        finally:
            proxy.slots.release()
            proxy.answered()

    def _forward(self, body: bytes, extra: dict[str, str]) -> None:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.args.upstream_timeout_s)
        try:
            sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
            conn.request(self.command, self.path, body=body or None, headers=sent)
            upstream = conn.getresponse()
            self.send_response(upstream.status)
            for key, value in upstream.getheaders():
                if key.lower() not in _HOP_BY_HOP and not key.lower().startswith("anthropic-ratelimit-"):
                    self.send_header(key, value)
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            while chunk := upstream.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
            proxy.count("forwarded")
        except OSError:
            proxy.count("forward_errors")
            self.close_connection = True
        finally:
            conn.close()

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: RateProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client gone or a connection dropped on purpose: the counters already say so
        super().handle_error(request, client_address)


def _watch(server: _Server, proxy: RateProxy) -> None:
    """Stop the server after --max-seconds, or after --idle-seconds without a request."""
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        if now - proxy.started > proxy.args.max_seconds or now - proxy.last_seen > proxy.args.idle_seconds:
            server.shutdown()
            return


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="base URL of the server behind the proxy (loopback)")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--burst-s", type=float, default=1.0, help="bucket capacity in seconds of the rate")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--headers", choices=("full", "partial", "none"), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--upstream-timeout-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.fault_rate <= 1.0 or args.rpm <= 0 or args.burst_s <= 0:
        parser.error("--fault-rate must be 0..1, --rpm and --burst-s above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proxy = RateProxy(args)
    server = _Server(("127.0.0.1", args.port), proxy)
    threading.Thread(target=_watch, args=(server, proxy), daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
