"""Message Batches: create, retrieve, list (paged), cancel, delete and JSONL results.

A batch ends `batch_processing_s` after creation. Its items are answered when it ends,
lazily on the next read, which behaves like a background worker without one: there is no
thread to leak, and a batch nobody looks at costs nothing. An item errors (api_error) with
the configured fault rates, decided by a hash of the seed and its custom_id, so a batch's
outcome is the same on every run.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.llm.sandbox.config import SandboxConfig
from core.llm.sandbox.wire import (
    RequestError,
    answer_request,
    error_body,
    message_object,
    new_id,
    validate_request,
)

__all__ = ["BatchStore"]

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EXPIRY_S = 24 * 3600
_CANCEL_DELAY_S = 0.1
MAX_BATCH_REQUESTS = 100_000
DEFAULT_PAGE, MAX_PAGE = 20, 1000


@dataclass
class _Batch:
    id: str
    created: float
    ends_at: float
    requests: list[dict[str, Any]]
    cancel_at: float | None = None
    ended: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


class BatchStore:
    """Thread-safe batches of one sandbox server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, _Batch] = {}
        self._count = 0

    def reset(self) -> None:
        with self._lock:
            self._batches.clear()

    def __len__(self) -> int:
        return len(self._batches)

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
            batch = _Batch(id=f"msgbatch_01{digest}", created=now, ends_at=now + config.batch_processing_s,
                           requests=requests)
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

    def results(self, batch_id: str, config: SandboxConfig) -> bytes:
        with self._lock:
            batch = self._get(batch_id)
            self._advance(batch, config)
            if batch.ended is None:
                raise RequestError(400, f"Batch {batch_id} is still processing; results are not available yet.")
            lines = [json.dumps(r, ensure_ascii=False) for r in batch.results]
        return ("\n".join(lines) + "\n").encode()

    def list(self, query: dict[str, str], config: SandboxConfig, base_url: str) -> dict[str, Any]:
        """Newest first; `after_id` pages forward, `before_id` back, as the SDK's page objects expect."""
        try:
            limit = int(query.get("limit", DEFAULT_PAGE))
        except ValueError:
            raise RequestError(400, "limit: Input should be a valid integer") from None
        if not 1 <= limit <= MAX_PAGE:
            raise RequestError(400, f"limit: Input should be between 1 and {MAX_PAGE}")
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: (b.created, b.id), reverse=True)
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
        """End the batch if its time has come: answer each item, or cancel the unanswered."""
        if batch.ended is not None:
            return
        now = time.time()
        if batch.cancel_at is not None and now >= min(batch.ends_at, batch.cancel_at + _CANCEL_DELAY_S):
            canceled = now < batch.ends_at  # the work was not done before the cancel took effect
            batch.results = [self._item_result(r, config, batch.id, canceled) for r in batch.requests]
            batch.ended = now
        elif now >= batch.ends_at:
            batch.results = [self._item_result(r, config, batch.id, False) for r in batch.requests]
            batch.ended = now

    def _item_result(self, item: dict[str, Any], config: SandboxConfig, batch_id: str,
                     canceled: bool) -> dict[str, Any]:
        custom_id = item["custom_id"]
        if canceled:
            return {"custom_id": custom_id, "result": {"type": "canceled"}}
        params = item["params"]
        request_id = new_id("req")
        try:
            if params.get("stream"):
                raise RequestError(400, "stream: streaming is not supported in a message batch")
            validate_request(params)
        except RequestError as exc:
            return {"custom_id": custom_id,
                    "result": {"type": "errored", "error": error_body(exc.status, exc.message, request_id)}}
        draw = int.from_bytes(hashlib.sha256(f"{config.seed}:{custom_id}".encode()).digest()[:8], "big") / 2**64
        if draw < config.fault_rate + config.rate_500:
            return {"custom_id": custom_id,
                    "result": {"type": "errored", "error": error_body(500, None, request_id)}}
        answer = answer_request(params, config.seed)
        message = message_object(answer, params["model"], new_id("msg"))
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def _view(self, batch: _Batch, base_url: str) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.ended is None:
            counts["processing"] = len(batch.requests)
            status = "canceling" if batch.cancel_at is not None else "in_progress"
        else:
            status = "ended"
            for result in batch.results:
                counts[result["result"]["type"]] += 1
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
