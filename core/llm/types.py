"""The values a model call returns: token counts (`Usage`) and one successful call (`LLMResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLMResult", "Usage"]


@dataclass(frozen=True)
class Usage:
    """Token counts of one call (or a sum of calls), as the API reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    # the part of cache_creation_input_tokens written to the 1-hour cache (the rest: 5 minutes)
    cache_creation_1h_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_creation_1h_input_tokens + other.cache_creation_1h_input_tokens,
        )

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """From the SDK's usage object or the JSON of a stream event's usage."""
        if usage is None:
            return cls()
        get = usage.get if isinstance(usage, Mapping) else lambda name, default: getattr(usage, name, default)
        return cls(
            input_tokens=int(get("input_tokens", 0) or 0),
            output_tokens=int(get("output_tokens", 0) or 0),
            cache_creation_input_tokens=int(get("cache_creation_input_tokens", 0) or 0),
            cache_read_input_tokens=int(get("cache_read_input_tokens", 0) or 0),
            cache_creation_1h_input_tokens=_one_hour(get("cache_creation", None)),
        )


def _one_hour(split: Any) -> int:
    """ephemeral_1h_input_tokens of a usage's cache_creation breakdown (an object, a dict, or absent)."""
    if split is None:
        return 0
    value = split.get("ephemeral_1h_input_tokens") if isinstance(split, Mapping) else getattr(
        split, "ephemeral_1h_input_tokens", 0)
    return int(value or 0)


@dataclass(frozen=True)
class LLMResult:
    """One successful call. `usage`/`cost_usd` include the attempts that failed part-way (cut streams)."""

    text: str
    usage: Usage
    cost_usd: float
    request_id: str | None
    model: str
    stop_reason: str | None
    attempts: int
    provider: str = "sandbox"
    price_known: bool = True
    failures: list[str] = field(default_factory=list)  # error codes of the failed attempts, in order
