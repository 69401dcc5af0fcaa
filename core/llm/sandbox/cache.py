"""Prompt caching: which part of a request's input is written to the cache, read from it, or neither.

A `cache_control` on a system or message content block is a breakpoint: the prompt up to and
including that block (with the model) is a prefix the cache can hold, for 5 minutes
(`{"type": "ephemeral"}`) or an hour (`"ttl": "1h"`), each lifetime counted again from every use.
As with the real API, a prefix shorter than the model's minimum cacheable length
(`cache_min_tokens` in core/llm/prices.toml) is not cached at all, a request carries at most
four breakpoints, the longest cached prefix is read, the rest up to the last breakpoint is
written, and `input_tokens` counts only what is neither.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from core.llm.pricing import get_model
from core.llm.sandbox.config import SandboxConfig
from core.llm.sandbox.text import estimate_tokens, message_text
from core.llm.sandbox.wire import RequestError

__all__ = ["CacheUse", "PromptCache"]

MAX_BREAKPOINTS = 4
_MESSAGE_OVERHEAD_TOKENS = 3  # as request_input_tokens counts each message
_TTLS = ("5m", "1h")


@dataclass(frozen=True)
class CacheUse:
    """Input tokens of one request by how the cache treated them."""

    read: int = 0
    created_5m: int = 0
    created_1h: int = 0

    @property
    def created(self) -> int:
        return self.created_5m + self.created_1h


@dataclass(frozen=True)
class _Breakpoint:
    digest: str
    tokens: int  # of the prompt up to and including the marked block
    ttl: str


def _ttl(control: Any, where: str) -> str:
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise RequestError(400, f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in _TTLS:
        raise RequestError(400, f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [{"type": "text", "text": content}] if content else []


def breakpoints(body: dict[str, Any]) -> list[_Breakpoint]:
    """Each cache_control of the request, in prompt order, with the digest and tokens of its prefix."""
    digest = hashlib.sha256(str(body.get("model")).encode())
    found: list[_Breakpoint] = []

    def mark(block: Any, where: str, tokens: int) -> None:
        clean = {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
        digest.update(json.dumps(clean, sort_keys=True, ensure_ascii=False).encode())
        if isinstance(block, dict) and "cache_control" in block:
            found.append(_Breakpoint(digest.copy().hexdigest(), tokens, _ttl(block["cache_control"], where)))

    system_chars = 0
    for j, block in enumerate(_blocks(body.get("system"))):
        system_chars += len(message_text([block]))
        mark(block, f"system.{j}", estimate_tokens("x" * system_chars))
    before = estimate_tokens("x" * system_chars) if system_chars else 0
    for i, message in enumerate(body.get("messages") or []):
        digest.update(str(message.get("role")).encode())
        chars = 0
        for j, block in enumerate(_blocks(message.get("content"))):
            chars += len(message_text([block]))
            mark(block, f"messages.{i}.content.{j}", before + estimate_tokens("x" * chars) + _MESSAGE_OVERHEAD_TOKENS)
        before += estimate_tokens(message_text(message.get("content"))) + _MESSAGE_OVERHEAD_TOKENS
    if len(found) > MAX_BREAKPOINTS:
        raise RequestError(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                f"Found {len(found)}.")
    return found


class PromptCache:
    """The cached prefixes of one sandbox server, by (digest, ttl), each with the time it lapses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def use(self, body: dict[str, Any], input_tokens: int, config: SandboxConfig,
            now: float | None = None, *, look_only: bool = False) -> CacheUse:
        """Read and write the cache for one validated request whose input is `input_tokens` in all.

        `look_only`: what the request would read and write, leaving the cache as it is.
        """
        points = [p for p in breakpoints(body) if p.tokens >= get_model(str(body.get("model")))[0].cache_min_tokens]
        if not points:
            return CacheUse()
        now = time.monotonic() if now is None else now
        life = {"5m": config.cache_ttl_5m_s, "1h": config.cache_ttl_1h_s}
        with self._lock:
            hit = next((k for k in range(len(points) - 1, -1, -1)
                        if self._entries.get((points[k].digest, points[k].ttl), -1.0) > now), -1)
            read = min(points[hit].tokens, input_tokens) if hit >= 0 else 0
            created = {"5m": 0, "1h": 0}
            edge = read
            for point in points[hit + 1:] if hit >= 0 else points:
                tokens = min(point.tokens, input_tokens)
                created[point.ttl] += max(0, tokens - edge)
                edge = max(edge, tokens)
            if not look_only:
                for point in points:
                    self._entries[(point.digest, point.ttl)] = now + life[point.ttl]
                self._expire(now)
        return CacheUse(read=read, created_5m=created["5m"], created_1h=created["1h"])

    def _expire(self, now: float) -> None:
        if len(self._entries) > 10_000:  # keep a long run's memory flat
            for key in [k for k, until in self._entries.items() if until <= now]:
                del self._entries[key]
