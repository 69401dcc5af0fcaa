"""Model access: the Claude client, prices, and the offline sandbox model server.

Names load on first use, so importing the sandbox (or the CLI) does not import the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core._lazy import lazy_exports

__all__ = ["DEFAULT_MODEL", "MODELS", "ClaudeClient", "LLMResult", "Usage", "cost_usd", "get_client", "reset_client",
           "run_sync"]

__getattr__ = lazy_exports(__name__, globals(), {
    "core.llm.client": ["ClaudeClient", "get_client", "reset_client"],
    "core.llm.loops": ["run_sync"],
    "core.llm.pricing": ["DEFAULT_MODEL", "MODELS", "cost_usd"],
    "core.llm.types": ["LLMResult", "Usage"],
})

if TYPE_CHECKING:
    from core.llm.client import ClaudeClient, get_client, reset_client
    from core.llm.loops import run_sync
    from core.llm.pricing import DEFAULT_MODEL, MODELS, cost_usd
    from core.llm.types import LLMResult, Usage
