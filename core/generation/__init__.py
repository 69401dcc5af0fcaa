"""One conversation: template -> prompt -> model call -> parsed, validated Conversation."""

from core.generation.models import Conversation, GenerationParams, GenerationResult, Turn
from core.generation.parse import parse_conversation
from core.generation.prompts import build_prompt, template_placeholders, validate_params
from core.generation.service import agenerate_conversation, estimate_output_tokens, generate_conversation
from core.generation.templates import PLACEHOLDERS, TEMPLATES, Template, get_template, template_names

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
    "generate_conversation",
    "get_template",
    "parse_conversation",
    "template_names",
    "template_placeholders",
    "validate_params",
]
