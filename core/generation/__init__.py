"""One conversation: template -> prompt -> model call -> parsed, validated Conversation."""

from typing import TYPE_CHECKING

from core._lazy import lazy_exports

__all__ = [
    "PLACEHOLDERS",
    "TEMPLATES",
    "Conversation",
    "GenerationParams",
    "GenerationResult",
    "Template",
    "Turn",
    "agenerate_conversation",
    "build_prompt",
    "estimate_output_tokens",
    "get_template",
    "parse_conversation",
    "template_names",
    "template_placeholders",
    "validate_params",
]

# loaded on first use: the templates alone do not need the SDK the price table reads
__getattr__ = lazy_exports(__name__, globals(), {
    "core.generation.models": ["Conversation", "GenerationParams", "GenerationResult", "Turn"],
    "core.generation.parse": ["parse_conversation"],
    "core.generation.prompts": ["build_prompt", "template_placeholders", "validate_params"],
    "core.generation.service": ["agenerate_conversation", "estimate_output_tokens"],
    "core.generation.templates": ["PLACEHOLDERS", "TEMPLATES", "Template", "get_template", "template_names"],
})

if TYPE_CHECKING:
    from core.generation.models import Conversation, GenerationParams, GenerationResult, Turn
    from core.generation.parse import parse_conversation
    from core.generation.prompts import build_prompt, template_placeholders, validate_params
    from core.generation.service import agenerate_conversation, estimate_output_tokens
    from core.generation.templates import PLACEHOLDERS, TEMPLATES, Template, get_template, template_names
