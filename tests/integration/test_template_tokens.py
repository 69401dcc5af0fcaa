"""A template's system prompt counted by the model service (count_tokens), against the model's cache minimum."""

from __future__ import annotations

from core.templates.tokens import system_prompt_tokens

SANDBOX = {"seed": 1}


def test_the_system_prompt_is_counted_by_the_model_service_and_compared_with_the_cache_minimum(sandbox):
    """The sandbox's count_tokens counts the prompt alone; short is below the model's minimum, long is above it."""
    prompt = "You are a claims handler who checks every detail of a policy. " * 120
    short = system_prompt_tokens("You are a claims handler.", "claude-sonnet-4-5")
    long = system_prompt_tokens(prompt, "claude-sonnet-4-5")
    on_haiku = system_prompt_tokens(prompt, "claude-haiku-4-5")
    assert short.provider == "endpoint" and short.tokens == 7  # 25 characters at the sandbox's 4 a token
    assert not short.cacheable and "below the 1,024 tokens claude-sonnet-4-5 needs" in short.text()
    assert long.tokens == len(prompt) // 4 and long.cacheable and "can reuse it from the cache" in long.text()
    assert (on_haiku.tokens, on_haiku.cache_min_tokens, on_haiku.cacheable) == (long.tokens, 4096, False)
