"""Model access: the Claude client, prices, and the offline sandbox model server."""

from core.llm.client import ClaudeClient, LLMResult, Usage, get_client, reset_client
from core.llm.pricing import DEFAULT_MODEL, MODELS, cost_usd

__all__ = ["DEFAULT_MODEL", "MODELS", "ClaudeClient", "LLMResult", "Usage", "cost_usd", "get_client", "reset_client"]
