"""The token count of a template's system prompt, and whether prompt caching can reuse it.

The system prompt is the prefix every conversation of a template shares; the model caches a
prefix only from its minimum cacheable length on (`cache_min_tokens` in core/llm/prices.toml).
The count is the model service's own (`messages.count_tokens`): Claude's with a key, the
sandbox's without one.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import get_settings
from core.errors import AppError, ErrorCode
from core.llm.pricing import get_model

if TYPE_CHECKING:
    from core.llm.client import ClaudeClient

__all__ = ["PrefixTokens", "acached_system_prompt_tokens", "asystem_prompt_tokens", "system_prompt_tokens"]

# count_tokens needs a message; this one is the same for every template, so its few tokens come off
_PROBE = [{"role": "user", "content": "."}]


@dataclass(frozen=True)
class PrefixTokens:
    """A system prompt's tokens for one model, that model's minimum cacheable length, and who counted.

    `provider` is the client's ("sandbox", "endpoint", "claude"), or "estimate" when the service
    could not count and the local estimate stands in.
    """

    tokens: int
    model: str
    cache_min_tokens: int
    provider: str

    @property
    def cacheable(self) -> bool:
        return self.tokens >= self.cache_min_tokens

    def text(self) -> str:
        counted = {"sandbox": "counted by the offline sandbox",
                   "estimate": "estimated here: the model service did not count it"}.get(
            self.provider, "counted by the model service")
        if self.cacheable:
            return (f"The system prompt is {self.tokens:,} tokens ({counted}): at least the {self.cache_min_tokens:,} "
                    f"{self.model} caches, so every conversation of a batch can reuse it from the cache.")
        return (f"The system prompt is {self.tokens:,} tokens ({counted}): below the {self.cache_min_tokens:,} tokens "
                f"{self.model} needs before it caches a prompt, so it is sent in full with every conversation.")


def system_prompt_tokens(system_prompt: str, model: str | None = None, *, client: ClaudeClient | None = None,
                         component: str = "templates") -> PrefixTokens:
    """Count `system_prompt` for `model` (default: the configured one) with the model service."""
    from core.llm.loops import run_sync

    return run_sync(asystem_prompt_tokens(system_prompt, model, client=client, component=component))


async def asystem_prompt_tokens(system_prompt: str, model: str | None = None, *, client: ClaudeClient | None = None,
                                component: str = "templates") -> PrefixTokens:
    """`system_prompt_tokens` for async callers."""
    from core.llm.client import get_client

    name = model or get_settings().default_model
    llm = client or get_client()
    with_prompt = await llm.acount_tokens(system=system_prompt, messages=_PROBE, model=name, component=component)
    without = await llm.acount_tokens(system=None, messages=_PROBE, model=name, component=component)
    info, _known = get_model(name)
    return PrefixTokens(tokens=max(with_prompt - without, 0), model=name, cache_min_tokens=info.cache_min_tokens,
                        provider=llm.provider)


# (provider, base URL, model, digest of the prompt) -> its count: a template's prompt is counted once
# per process, not once per conversation
_counted: dict[tuple[str, str | None, str, str], PrefixTokens] = {}
_REFUSES_EVERY_CALL = frozenset({ErrorCode.AUTHENTICATION_FAILED, ErrorCode.MALFORMED_API_KEY, ErrorCode.BILLING_ERROR,
                                 ErrorCode.SPEND_LIMIT})
_counted_lock = threading.Lock()


async def acached_system_prompt_tokens(system_prompt: str, model: str, *, client: ClaudeClient, component: str,
                                       fallback: PrefixTokens | None = None) -> PrefixTokens:
    """`asystem_prompt_tokens`, remembered for the process: the count of a prompt does not change.

    `fallback`: remembered and returned instead when the count fails (the client has recorded why);
    without one, or when the key or the account is refused (every call would be), the AppError is raised.
    """
    key = (client.provider, client.base_url, model, hashlib.sha256(system_prompt.encode()).hexdigest())
    with _counted_lock:
        known = _counted.get(key)
    if known is None:
        try:
            known = await asystem_prompt_tokens(system_prompt, model, client=client, component=component)
        except AppError as exc:
            # a key or an account every call is refused for: the call after the count would be refused the
            # same, so the count's error is the item's (one row in the log), not a reason to estimate
            if fallback is None or exc.code in _REFUSES_EVERY_CALL:
                raise
            known = fallback
        with _counted_lock:
            if len(_counted) > 1000:  # templates come and go; a long-lived worker keeps only recent ones
                _counted.clear()
            _counted[key] = known
    return known
