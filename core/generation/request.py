"""The Messages request of one item, the same online and in a Message Batch, so both send the same prefix.

The template's system prompt is the prefix every conversation of a template shares; nothing
variable is in it (persona, topic, turns and the item's values are in the user message, after
it). When the model service counts it at the model's minimum cacheable length or more
(`cache_min_tokens`, core/llm/prices.toml) it goes as one text block with a `cache_control`
breakpoint: a 5-minute cache online, a 1-hour cache in a Message Batch (results arrive over
hours). Shorter, it goes as plain text, which the API would not cache anyway.

    request = await aitem_request(params, mode="message_batches", client=client)
    {"custom_id": item_id, "params": request.params()}        # one Message Batches request
    client.acomplete(system=request.system, messages=request.messages(), ...)   # online
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.generation.prompts import prompt_for
from core.llm.pricing import MODES, get_model
from core.templates.tokens import PrefixTokens, acached_system_prompt_tokens

if TYPE_CHECKING:
    from core.generation.models import GenerationParams
    from core.llm.client import ClaudeClient
    from core.templates.model import Template

__all__ = ["CACHE_TTL", "ItemRequest", "aitem_request", "item_request", "system_param"]

# the cache a breakpoint asks for, per mode
CACHE_TTL = {"online": "5m", "message_batches": "1h"}


def system_param(system: str, *, cached: bool, mode: str) -> str | list[dict[str, Any]]:
    """The request's `system`: a text block with a breakpoint for `mode`'s cache when `cached`, else the text."""
    if not cached:
        return system
    control: dict[str, Any] = {"type": "ephemeral"}
    if CACHE_TTL[mode] != "5m":
        control["ttl"] = CACHE_TTL[mode]
    return [{"type": "text", "text": system, "cache_control": control}]


@dataclass(frozen=True)
class ItemRequest:
    """What one conversation asks the model: the prompt, the model and reply length, and the cache decision."""

    system_prompt: str  # as the conversation stores it
    user: str
    model: str
    max_tokens: int
    mode: str
    prefix: PrefixTokens  # the count the breakpoint was decided on (provider "estimate": the local estimate)
    template: Template

    @property
    def cached(self) -> bool:
        return self.prefix.cacheable

    @property
    def cache_ttl(self) -> str:
        return CACHE_TTL[self.mode]

    @property
    def system(self) -> str | list[dict[str, Any]]:
        return system_param(self.system_prompt, cached=self.cached, mode=self.mode)

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.user}]

    def params(self) -> dict[str, Any]:
        """The Messages API params: `params` of a Message Batches request, or the body of an online call."""
        return {"model": self.model, "max_tokens": self.max_tokens, "system": self.system,
                "messages": self.messages()}


async def aitem_request(params: GenerationParams, *, mode: str = "online", client: ClaudeClient | None = None,
                        template: Template | None = None, component: str = "generation") -> ItemRequest:
    """The request for `params` (validated first: ValidationError(field=...) on bad input).

    The system prompt is counted by the model service once per process and prompt; if the count
    fails (recorded in the error log by the client) the breakpoint follows the local estimate, for
    the rest of the process too, so a service that refuses counts is asked once, not per item.
    """
    from core.config import get_settings
    from core.llm.client import get_client

    if mode not in MODES:
        raise ValueError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
    system, user, template = prompt_for(params, template)
    settings = get_settings()
    # what the client would default to, made explicit: a batch request must name both
    model = params.model or template.content.model or settings.default_model
    max_tokens = template.content.max_tokens or settings.max_output_tokens
    llm = client or get_client()
    estimate = PrefixTokens(tokens=settings.estimated_tokens(system), model=model,
                            cache_min_tokens=get_model(model)[0].cache_min_tokens, provider="estimate")
    prefix = await acached_system_prompt_tokens(system, model, client=llm, component=component, fallback=estimate)
    return ItemRequest(system_prompt=system, user=user, model=model, max_tokens=max_tokens,
                       mode=mode, prefix=prefix, template=template)


def item_request(params: GenerationParams, *, mode: str = "online", client: ClaudeClient | None = None,
                 template: Template | None = None, component: str = "generation") -> ItemRequest:
    """`aitem_request` for sync callers (not inside a running event loop)."""
    from core.llm.loops import run_sync

    return run_sync(aitem_request(params, mode=mode, client=client, template=template, component=component))
