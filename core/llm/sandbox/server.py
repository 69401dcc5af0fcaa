"""SandboxServer: an Anthropic-compatible HTTP server on loopback, the offline double of the model service.

One thread accepts connections and one thread serves each connection (HTTP/1.1 keep-alive),
so a client pool of ~50 connections is ~50 threads; each ends when its connection closes,
goes idle for `idle_timeout_s`, or the server stops. Waits (latency, token pacing, slow
faults) watch both the stop signal and the client's socket, so a client that gives up frees
its thread at once. stop() closes every open connection and joins the threads it started.

Order of checks on POST /v1/messages: API key, force_status, request validation, injected
status/disconnect faults (they take nothing from the rate limits), the real rate limits
(429 with retry-after), then the answer, possibly slow, cut, malformed or not a conversation.
A forced or injected status carries ``x-sandbox-fault``, so the app can say the chaos switch caused it.
"""

from __future__ import annotations

import json
import logging
import math
import select
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.llm.sandbox.batches import MAX_BATCH_BYTES, BatchStore
from core.llm.sandbox.cache import CacheUse, PromptCache
from core.llm.sandbox.config import SandboxConfig, SandboxConfigError
from core.llm.sandbox.faults import FAULT_KINDS, FaultPicker
from core.llm.sandbox.limits import RateLimits
from core.llm.sandbox.text import break_conversation, estimate_tokens, request_input_tokens
from core.llm.sandbox.wire import (
    Answer,
    RequestError,
    answer_request,
    error_body,
    finish_answer,
    message_object,
    new_id,
    sse,
    stream_delta,
    stream_head,
    stream_tail,
    text_pieces,
    validate_request,
)

__all__ = ["SandboxServer"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024  # the Messages API's request size limit
_STATUS_FAULTS = ("429", "500", "503", "529")
_MODELS = ("claude-sonnet-5-5", "claude-opus-5", "claude-haiku-5")
_POLL_S = 0.1
# on every answer the fault injection made up, so the app can say the chaos switch caused it
_FAULT_HEADER = "x-sandbox-fault"


class _ClientGone(Exception):
    """The client closed its connection, or the server is stopping: stop serving this request."""


class _Stats:
    """Thread-safe counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.started = time.monotonic()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def status(self, status: int) -> None:
        with self._lock:
            self.by_status[str(status)] += 1
            if status == 429:
                self.counts["status_429_sent"] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1
            self.counts["faults_injected"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            names = ("requests", "messages_requests", "streams", "faults_injected", "rate_limited",
                     "status_429_sent", "input_tokens", "output_tokens", "cache_read_input_tokens",
                     "cache_creation_input_tokens", "client_gone", "connections", "batches_created")
            out: dict[str, Any] = {name: self.counts[name] for name in names}
            out["by_status"] = dict(sorted(self.by_status.items()))
            out["faults"] = {kind: self.faults[kind] for kind in (*FAULT_KINDS, "forced")}
            out["uptime_s"] = round(time.monotonic() - self.started, 3)
            return out


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can close and join them."""

    daemon_threads = True
    block_on_close = False  # joined by SandboxServer.stop() with a timeout instead
    request_queue_size = 256  # a burst of ~50 new connections must not overflow the listen backlog
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.conn_lock = threading.Lock()
        self.conns: dict[socket.socket, threading.Thread] = {}
        self.peak_conns = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall; loopback needs none
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="sandbox-conn", daemon=True)
        with self.conn_lock:
            self.conns[request] = thread
            self.peak_conns = max(self.peak_conns, len(self.conns))
        self.sandbox._stats.add("connections")
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up mid-answer is normal here (timeouts, faults); anything else is a bug
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | _ClientGone):
            self.sandbox._stats.add("client_gone")
            return
        log.exception("sandbox: error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AnthropicSandbox/1.0"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # The class-wide `timeout` would fix one value for every server; each sandbox has its own.
        self.connection.settimeout(self.sandbox.config.idle_timeout_s or None)

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("sandbox: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unknown method) in Anthropic's shape too, not HTML."""
        self.request_id = new_id("req")
        self.close_connection = True
        try:
            self._send_error(code, message or explain)
        except _ClientGone:
            log.debug("sandbox: client gone before a protocol error could be sent")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---- routing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self.request_id = new_id("req")
        self.sent_status: int | None = None
        self.sandbox._stats.add("requests")
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = dict(parse_qsl(parts.query))
        try:
            body = self._read_body()
            if path.startswith("/_sandbox/"):
                self._admin(method, path, body)
                return
            if path.startswith("/v1/"):
                self._check_key()
            segments = path.strip("/").split("/")
            match (method, segments):
                case ("POST", ["v1", "messages"]):
                    self._messages(body)
                case ("POST", ["v1", "messages", "count_tokens"]):
                    self._count_tokens(body)
                case ("POST", ["v1", "messages", "batches"]):
                    self._send_json(200, self.sandbox._batches.create(self._json(body), self.sandbox.config,
                                                                      self._base_url()))
                    self.sandbox._stats.add("batches_created")
                case ("GET", ["v1", "messages", "batches"]):
                    self._send_json(200, self.sandbox._batches.list(query, self.sandbox.config, self._base_url()))
                case ("GET", ["v1", "messages", "batches", batch_id]):
                    self._send_json(200, self.sandbox._batches.retrieve(batch_id, self.sandbox.config,
                                                                        self._base_url()))
                case ("DELETE", ["v1", "messages", "batches", batch_id]):
                    self._send_json(200, self.sandbox._batches.delete(batch_id, self.sandbox.config))
                case ("POST", ["v1", "messages", "batches", batch_id, "cancel"]):
                    self._send_json(200, self.sandbox._batches.cancel(batch_id, self.sandbox.config,
                                                                      self._base_url()))
                case ("GET", ["v1", "messages", "batches", batch_id, "results"]):
                    lines = self.sandbox._batches.results(batch_id, self.sandbox.config)
                    self._send_head(200, "application/binary", {"Transfer-Encoding": "chunked"})
                    for line in lines:
                        self._chunk(line)
                    self._write(b"0\r\n\r\n")
                case ("GET", ["v1", "models"]):
                    self._send_json(200, _model_page())
                case ("GET", ["v1", "models", model_id]):
                    self._model(model_id)
                case _:
                    raise RequestError(404, f"Not found: {method} {path}")
        except RequestError as exc:
            self._send_error(exc.status, exc.message)
        except _ClientGone:
            self.close_connection = True
            self.sandbox._stats.add("client_gone")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            self.sandbox._stats.add("client_gone")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise RequestError(400, "Invalid Content-Length header.") from None
        limit = self._body_limit()
        if length > limit:
            self.close_connection = True  # the unread body would be taken for the next request
            raise RequestError(413, f"Request exceeds the maximum allowed number of bytes ({limit}).")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing we use
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()
            if len(data) > self._body_limit():
                self.close_connection = True
                raise RequestError(413, "Request exceeds the maximum allowed number of bytes.")

    def _body_limit(self) -> int:
        return MAX_BATCH_BYTES if urlsplit(self.path).path.rstrip("/") == "/v1/messages/batches" else MAX_BODY_BYTES

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(400, f"The request body is not valid JSON: {exc}") from None

    def _check_key(self) -> None:
        key = self.headers.get("x-api-key")
        auth = self.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if not key and not token:
            raise RequestError(401, "x-api-key header is required")
        required = self.sandbox.config.api_key_required
        if required and required not in (key, token):
            raise RequestError(401, "invalid x-api-key")

    def _base_url(self) -> str:
        return f"http://{self.headers.get('Host') or self.sandbox.address}"

    # ---- /v1/messages ----------------------------------------------------------------------

    def _messages(self, raw: bytes) -> None:
        sandbox = self.sandbox
        config = sandbox.config  # one snapshot for the whole request
        stats = sandbox._stats
        stats.add("messages_requests")
        if config.force_status is not None:
            stats.fault("forced")
            self._send_error(config.force_status, config.force_message,
                             {**self._retry_headers(config), _FAULT_HEADER: "forced"},
                             error_code=config.force_error_code)
            return
        body = self._json(raw)
        validate_request(body)
        fault = sandbox._faults.pick(config)
        if fault in _STATUS_FAULTS:
            stats.fault(fault)
            status = int(fault)
            self._send_error(status, _FAULT_MESSAGES[status],
                             {**(self._retry_headers(config) if status in (429, 529) else {}), _FAULT_HEADER: fault})
            return
        if fault == "disconnect":
            stats.fault(fault)
            self._hang_up()
            return
        answer = answer_request(body, config.seed)
        if fault == "invalid_conversation":
            broken = break_conversation(answer.text, answer.reply.prefill, sandbox._faults.uniform())
            answer = finish_answer(broken, body, answer.reply)
        # as the API counts them for its input limit: cache reads are not, cache writes are
        cached = sandbox._cache.use(body, answer.input_tokens, config, look_only=True)
        admission = sandbox._limits.admit(answer.input_tokens - cached.read, answer.output_tokens)
        if not admission.allowed:
            stats.add("rate_limited")
            wait = admission.retry_after_s
            headers = {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
            self._send_error(429, _limit_message(admission.limited_by, config), headers)
            return
        cache = sandbox._cache.use(body, answer.input_tokens, config)
        stats.add("input_tokens", answer.input_tokens - cache.read - cache.created)
        stats.add("output_tokens", answer.output_tokens)
        stats.add("cache_read_input_tokens", cache.read)
        stats.add("cache_creation_input_tokens", cache.created)
        if fault is not None:
            stats.fault(fault)
        if fault == "slow":
            self._pause(config.slow_s)
        self._pause(config.latency_ms / 1000)
        model = body["model"]
        if body.get("stream"):
            stats.add("streams")
            self._stream(answer, model, config, fault, cache)
        else:
            self._pause(answer.output_tokens / config.tokens_per_s)
            self._reply(answer, model, fault, cache)

    def _reply(self, answer: Answer, model: str, fault: str | None, cache: CacheUse) -> None:
        data = json.dumps(message_object(answer, model, new_id("msg"), cache), ensure_ascii=False).encode()
        if fault == "malformed_json":
            # a body that starts like a Message and then is not JSON at all
            data = data[: max(1, len(data) // 2)] + b"<<sandbox: malformed>>"
        if fault == "stream_cut":
            self._send_head(200, "application/json", {"Content-Length": str(len(data))})
            self._write(data[: len(data) // 2])
            self._hang_up()
            return
        self._send_bytes(200, data, "application/json")

    def _stream(self, answer: Answer, model: str, config: SandboxConfig, fault: str | None, cache: CacheUse) -> None:
        self._send_head(200, "text/event-stream; charset=utf-8",
                        {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"})
        for event in stream_head(answer, model, new_id("msg"), cache):
            self._chunk(event)
        pieces = text_pieces(answer.text)
        cut_after = max(1, len(pieces) // 2) if fault in ("stream_cut", "stream_error") else None
        started = time.monotonic()
        tokens_sent = 0
        for i, piece in enumerate(pieces):
            if cut_after is not None and i >= cut_after:
                if fault == "stream_error":  # the API's way to fail after its 200: an error event, then the end
                    self._chunk(sse("error", error_body(529, None, new_id("req"))))
                    self._write(b"0\r\n\r\n")
                    return
                self._hang_up()  # no message_stop, no final chunk: the client sees a broken stream
                return
            if fault == "malformed_json" and i == len(pieces) // 2:
                self._chunk(b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                            b'"delta": {"type": "text_delta", "text": "unterminated\n\n')
            self._chunk(stream_delta(piece))
            tokens_sent += estimate_tokens(piece)
            self._pause(started + tokens_sent / config.tokens_per_s - time.monotonic())
        if cut_after is not None:
            self._hang_up()
            return
        for event in stream_tail(answer):
            self._chunk(event)
        self._write(b"0\r\n\r\n")

    def _count_tokens(self, raw: bytes) -> None:
        body = self._json(raw)
        if isinstance(body, dict):
            body = {"max_tokens": 1, **body}
        validate_request(body)

        self._send_json(200, {"input_tokens": request_input_tokens(body.get("system"), body["messages"])})

    def _model(self, model_id: str) -> None:
        for model in _model_page()["data"]:
            if model["id"] == model_id:
                self._send_json(200, model)
                return
        raise RequestError(404, f"model: {model_id}")

    def _retry_headers(self, config: SandboxConfig) -> dict[str, str]:
        wait = config.retry_after_s
        return {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}

    # ---- admin -----------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> None:
        sandbox = self.sandbox
        if path == "/_sandbox/config" and method == "GET":
            self._send_json(200, sandbox.config.to_dict())
        elif path == "/_sandbox/config" and method == "POST":
            changes = self._json(body)
            if not isinstance(changes, dict):
                raise RequestError(400, "POST /_sandbox/config takes a JSON object of SandboxConfig fields")
            try:
                new = sandbox.configure(**changes)
            except SandboxConfigError as exc:
                raise RequestError(400, str(exc)) from None
            self._send_json(200, new.to_dict())
        elif path == "/_sandbox/stats" and method == "GET":
            self._send_json(200, sandbox.stats())
        elif path == "/_sandbox/batch_requests" and method == "GET":
            self._send_json(200, sandbox.batch_submissions())
        elif path == "/_sandbox/reset" and method == "POST":
            sandbox.reset()
            self._send_json(200, {"reset": True})
        else:
            raise RequestError(404, f"Not found: {method} {path}")

    # ---- writing ---------------------------------------------------------------------------

    def _send_head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("request-id", self.request_id)
        for name, value in self.sandbox._limits.headers().items():
            self.send_header(name, value)
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
        except OSError as exc:
            raise _ClientGone() from exc
        self.sent_status = status
        self.sandbox._stats.status(status)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._send_head(status, content_type, {**(headers or {}), "Content-Length": str(len(data))})
        self._write(data)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json", headers)

    def _send_error(self, status: int, message: str | None, headers: dict[str, str] | None = None,
                    error_code: str | None = None) -> None:
        body = error_body(status, message, self.request_id, error_code)
        self._send_json(status, body, {**(headers or {}), "x-should-retry": _should_retry(status)})

    def _chunk(self, data: bytes) -> None:
        self._write(b"%x\r\n%b\r\n" % (len(data), data))

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone() from exc

    def _hang_up(self) -> None:
        """Close the connection abruptly, whatever has been sent so far."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            raise _ClientGone() from exc

    def _pause(self, seconds: float) -> None:
        """Wait, but give up at once if the server stops or the client hangs up."""
        deadline = time.monotonic() + seconds
        stopping = self.sandbox._stopping
        while True:
            remaining = deadline - time.monotonic()
            if stopping.is_set():
                raise _ClientGone()
            if remaining <= 0:
                return
            step = min(remaining, _POLL_S)
            try:
                readable, _, _ = select.select([self.connection], [], [], step)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    raise _ClientGone()  # orderly close from the client
            except (OSError, ValueError) as exc:
                raise _ClientGone() from exc
            if readable:
                # the client sent more (a pipelined request): nothing to learn by polling, just wait
                stopping.wait(step)


_FAULT_MESSAGES = {
    429: "Number of request tokens has exceeded your per-minute rate limit (injected by the sandbox).",
    500: "Internal server error (injected by the sandbox).",
    503: "Service temporarily unavailable (injected by the sandbox).",
    529: "Overloaded (injected by the sandbox).",
}


def _limit_message(limited_by: str, config: SandboxConfig) -> str:
    if limited_by == "requests":
        return f"This request would exceed the rate limit for your organization of {config.rpm} requests per minute."
    limit = config.input_tpm if limited_by == "input_tokens" else config.output_tpm
    kind = "input" if limited_by == "input_tokens" else "output"
    return (f"This request would exceed the rate limit for your organization of {limit} {kind} tokens "
            "per minute.")


def _should_retry(status: int) -> str:
    return "true" if status in (408, 409, 429) or status >= 500 else "false"


def _model_page() -> dict[str, Any]:
    data = [
        {"id": model, "type": "model", "display_name": model.replace("-", " ").title(),
         "created_at": "2026-01-01T00:00:00Z", "lifecycle": "active", "max_input_tokens": 200_000,
         "max_tokens": 64_000}
        for model in _MODELS
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


class SandboxServer:
    """The sandbox on a background thread: start() -> base URL, configure(), stats(), reset(), stop()."""

    def __init__(self, config: SandboxConfig | None = None, **changes: Any) -> None:
        base = config or SandboxConfig()
        self._config = base.replace(**changes) if changes else base
        self._config_lock = threading.Lock()
        self._stats = _Stats()
        self._faults = FaultPicker(self._config.seed)
        self._limits = RateLimits(self._config.rpm, self._config.input_tpm, self._config.output_tpm)
        self._cache = PromptCache()
        self._batches = BatchStore(self._cache)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Bind (port 0: a free one), serve on a background thread, and return the base URL."""
        if self._httpd is not None:
            return self.base_url
        self._stopping.clear()
        self._httpd = _HTTPServer((self._config.host, self._config.port), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": _POLL_S},
                                        name="sandbox-accept", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, and join the threads (waiting at most `timeout`)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with httpd.conn_lock:
            open_conns = list(httpd.conns.items())
        for conn, _thread in open_conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("sandbox: connection already closed at stop")
        deadline = time.monotonic() + timeout
        for _conn, thread in open_conns:
            thread.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> str:
        return f"{self._config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    # ---- control -----------------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        return self._config

    def configure(self, **changes: Any) -> SandboxConfig:
        """Apply validated changes while running; requests already in flight keep their old config."""
        with self._config_lock:
            new = self._config.replace(**changes)
            if self.running and (new.host, new.port) != (self._config.host, self._config.port):
                raise SandboxConfigError("host and port cannot change while the sandbox is running")
            if new.seed != self._config.seed:
                self._faults.reseed(new.seed)
            self._limits.configure(new.rpm, new.input_tpm, new.output_tpm)
            self._config = new
        return new

    def stats(self) -> dict[str, Any]:
        out = self._stats.snapshot()
        out["batches"] = len(self._batches)
        out["batch_requests"] = sum(self._batches.submissions().values())
        out["cache_entries"] = len(self._cache)
        httpd = self._httpd
        if httpd is not None:
            with httpd.conn_lock:
                out["active_connections"] = len(httpd.conns)
                out["peak_connections"] = httpd.peak_conns
        else:
            out["active_connections"] = out["peak_connections"] = 0
        return out

    def batch_submissions(self) -> dict[str, int]:
        """custom_id -> how many Message Batches requests carried it since the last reset."""
        return self._batches.submissions()

    def reset(self) -> None:
        """Zero the counters, refill the rate limits, restart the fault sequence, forget batches and the cache."""
        self._stats.reset()
        self._limits.reset()
        self._faults.reseed(self._config.seed)
        self._batches.reset()
        self._cache.reset()
        httpd = self._httpd
        if httpd is not None:
            with httpd.conn_lock:
                httpd.peak_conns = len(httpd.conns)
