"""Message Batches: create, retrieve, list (paged), cancel, delete and JSONL results, in the API's shapes.

A batch ends `batch_processing_s` after creation, lazily on the next read, which behaves like a
background worker without one: there is no thread to leak, and a batch nobody looks at costs
nothing. When it ends, each request gets its outcome: params the Messages API would refuse are
`errored` (invalid_request_error), and the rest are drawn against the `batch_*_rate` knobs
(retryable overloaded_error / api_error, invalid_request_error, expired, canceled) from a hash of
the seed, the custom_id and how many times that custom_id was submitted before, so a run repeats
exactly and a resubmitted request gets a fresh draw. Prompt caching applies in request order.
A cancel ends the batch a moment later; the requests it had not reached by then are `canceled`.
Result messages are composed while the results stream, so a large batch holds only its requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.llm.sandbox.cache import CacheUse, PromptCache
from core.llm.sandbox.config import SandboxConfig
from core.llm.sandbox.text import request_input_tokens
from core.llm.sandbox.wire import (
    RequestError,
    answer_request,
    error_body,
    message_object,
    validate_request,
)

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_REQUESTS", "BatchStore"]

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EXPIRY_S = 24 * 3600
_CANCEL_DELAY_S = 0.1
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
DEFAULT_PAGE, MAX_PAGE = 20, 1000
_INJECTED_INVALID = "messages: the request is invalid (injected by the sandbox)"
_RETRYABLE = ((529, "Overloaded (injected by the sandbox)."), (500, "Internal server error (injected by the sandbox)."))


@dataclass(frozen=True)
class _Outcome:
    """What became of one request: a result type, and its error or cache use."""

    type: str  # succeeded | errored | expired | canceled
    error: dict[str, Any] | None = None
    cache: CacheUse | None = None


@dataclass
class _Batch:
    id: str
    seq: int
    created: float
    ends_at: float
    requests: list[dict[str, Any]]
    attempts: list[int]  # per request: how many times its custom_id was submitted before this batch
    cancel_at: float | None = None
    ended: float | None = None
    outcomes: list[_Outcome] = field(default_factory=list)


def _draw(seed: int, custom_id: str, attempt: int, salt: str = "") -> float:
    digest = hashlib.sha256(f"{seed}:{custom_id}:{attempt}{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class BatchStore:
    """Thread-safe batches of one sandbox server, and how often each custom_id was submitted."""

    def __init__(self, cache: PromptCache | None = None) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, _Batch] = {}
        self._count = 0
        self._submitted: Counter[str] = Counter()
        self._cache = cache or PromptCache()

    def reset(self) -> None:
        with self._lock:
            self._batches.clear()
            self._submitted.clear()

    def __len__(self) -> int:
        return len(self._batches)

    def submissions(self) -> dict[str, int]:
        """custom_id -> how many batch requests carried it since the last reset."""
        with self._lock:
            return dict(self._submitted)

    def create(self, body: Any, config: SandboxConfig, base_url: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list) or not body["requests"]:
            raise RequestError(400, "requests: at least one request is required")
        requests = body["requests"]
        if len(requests) > MAX_BATCH_REQUESTS:
            raise RequestError(400, f"requests: a batch holds at most {MAX_BATCH_REQUESTS} requests")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise RequestError(400, f"requests.{i}.custom_id: must be 1-64 letters, digits, '-' or '_'")
            if custom_id in seen:
                raise RequestError(400, f"requests.{i}.custom_id: '{custom_id}' is not unique in this batch")
            if not isinstance(item.get("params"), dict):
                raise RequestError(400, f"requests.{i}.params: Field required")
            seen.add(custom_id)
        now = time.time()
        with self._lock:
            self._count += 1
            digest = hashlib.sha256(f"{config.seed}:{self._count}:{now}".encode()).hexdigest()[:24]
            attempts = [self._submitted[item["custom_id"]] for item in requests]
            self._submitted.update(item["custom_id"] for item in requests)
            batch = _Batch(id=f"msgbatch_01{digest}", seq=self._count, created=now,
                           ends_at=now + config.batch_processing_s, requests=requests, attempts=attempts)
            self._batches[batch.id] = batch
            return self._view(batch, base_url)

    def retrieve(self, batch_id: str, config: SandboxConfig, base_url: str) -> dict[str, Any]:
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch, config)
            return self._view(batch, base_url)

    def cancel(self, batch_id: str, config: SandboxConfig, base_url: str) -> dict[str, Any]:
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch, config)
            if batch.ended is None and batch.cancel_at is None:
                batch.cancel_at = time.time()
            return self._view(batch, base_url)

    def delete(self, batch_id: str, config: SandboxConfig) -> dict[str, Any]:
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch, config)
            if batch.ended is None:
                raise RequestError(400, f"Batch {batch_id} cannot be deleted while it is still processing; "
                                        "cancel it first.")
            del self._batches[batch_id]
            return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str, config: SandboxConfig) -> Iterator[bytes]:
        """The batch's JSONL results, one line per request, composed as they are read."""
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch, config)
            if batch.ended is None:
                raise RequestError(400, f"Batch {batch_id} is still processing; results are not available yet.")
            pairs = list(zip(batch.requests, batch.outcomes, strict=True))
        seed = config.seed
        return (json.dumps(self._result(item, outcome, batch.id, seed), ensure_ascii=False).encode() + b"\n"
                for item, outcome in pairs)

    def list(self, query: dict[str, str], config: SandboxConfig, base_url: str) -> dict[str, Any]:
        """Newest first; `after_id` pages forward (older), `before_id` back (newer), as the SDK's pages expect."""
        try:
            limit = int(query.get("limit", DEFAULT_PAGE))
        except ValueError:
            raise RequestError(400, "limit: Input should be a valid integer") from None
        if not 1 <= limit <= MAX_PAGE:
            raise RequestError(400, f"limit: Input should be between 1 and {MAX_PAGE}")
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: b.seq, reverse=True)
            ids = [b.id for b in ordered]
            if "after_id" in query:
                start = self._position(ids, query["after_id"]) + 1
                page, has_more = ordered[start:start + limit], start + limit < len(ordered)
            elif "before_id" in query:
                end = self._position(ids, query["before_id"])
                begin = max(0, end - limit)
                page, has_more = ordered[begin:end], begin > 0
            else:
                page, has_more = ordered[:limit], limit < len(ordered)
            for batch in page:
                self._advance(batch, config)
            data = [self._view(b, base_url) for b in page]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    # ---- internals (lock held) -----------------------------------------------------------

    def _position(self, ids: Sequence[str], batch_id: str) -> int:
        if batch_id not in ids:
            raise RequestError(404, f"No batch with id {batch_id}")
        return ids.index(batch_id)

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise RequestError(404, f"No batch with id {batch_id}")
        return batch

    def _advance(self, batch: _Batch, config: SandboxConfig) -> None:
        """End the batch if its time has come: decide each request's outcome, canceled past a cancel."""
        if batch.ended is not None:
            return
        now = time.time()
        reached = len(batch.requests)
        if batch.cancel_at is not None and now >= min(batch.ends_at, batch.cancel_at + _CANCEL_DELAY_S):
            span = batch.ends_at - batch.created
            if now < batch.ends_at and span > 0:
                # the requests are worked through evenly over the processing time; the cancel stops the rest
                reached = int(len(batch.requests) * max(0.0, batch.cancel_at - batch.created) / span)
        elif now < batch.ends_at:
            return
        batch.outcomes = [
            self._outcome(item, attempt, config) if i < reached else _Outcome("canceled")
            for i, (item, attempt) in enumerate(zip(batch.requests, batch.attempts, strict=True))
        ]
        batch.ended = now

    def _outcome(self, item: dict[str, Any], attempt: int, config: SandboxConfig) -> _Outcome:
        params = item["params"]
        try:
            if params.get("stream"):
                raise RequestError(400, "stream: streaming is not supported in a message batch")
            validate_request(params)
        except RequestError as exc:
            return _Outcome("errored", error_body(exc.status, exc.message, None))
        custom_id = item["custom_id"]
        draw, edge = _draw(config.seed, custom_id, attempt), 0.0
        for kind, rate in config.batch_outcome_rates().items():
            edge += rate
            if draw < edge:
                if kind == "retryable":
                    status, message = _RETRYABLE[int(_draw(config.seed, custom_id, attempt, ":kind") * 2)]
                    return _Outcome("errored", error_body(status, message, None))
                if kind == "invalid":
                    return _Outcome("errored", error_body(400, _INJECTED_INVALID, None))
                return _Outcome(kind)
        try:
            cache = self._cache.use(params, request_input_tokens(params.get("system"), params["messages"]), config)
        except RequestError as exc:
            return _Outcome("errored", error_body(exc.status, exc.message, None))
        return _Outcome("succeeded", cache=cache)

    @staticmethod
    def _result(item: dict[str, Any], outcome: _Outcome, batch_id: str, seed: int) -> dict[str, Any]:
        custom_id = item["custom_id"]
        if outcome.type == "errored":
            return {"custom_id": custom_id, "result": {"type": "errored", "error": outcome.error}}
        if outcome.type != "succeeded":
            return {"custom_id": custom_id, "result": {"type": outcome.type}}
        params = item["params"]
        message_id = "msg_01" + hashlib.sha256(f"{batch_id}:{custom_id}".encode()).hexdigest()[:24]
        message = message_object(answer_request(params, seed), params["model"], message_id, outcome.cache,
                                 service_tier="batch")
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def _view(self, batch: _Batch, base_url: str) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.ended is None:
            counts["processing"] = len(batch.requests)
            status = "canceling" if batch.cancel_at is not None else "in_progress"
        else:
            status = "ended"
            for outcome in batch.outcomes:
                counts[outcome.type] += 1
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + _EXPIRY_S),
            "ended_at": _iso(batch.ended) if batch.ended is not None else None,
            "cancel_initiated_at": _iso(batch.cancel_at) if batch.cancel_at is not None else None,
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if batch.ended is not None else None,
        }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
