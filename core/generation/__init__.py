"""One conversation: template -> prompt -> model call -> parsed, validated Conversation.

The model call itself, `generate_conversation` / `agenerate_conversation`, is in
`core.generation.service`: it imports the model client and with it the anthropic SDK, which
the templates, prompts and parser (and the commands that only need those) do without.
"""

from core.generation.models import Conversation, GenerationParams, GenerationResult, Turn
from core.generation.parse import parse_conversation
from core.generation.prompts import build_prompt, template_placeholders, validate_params
from core.generation.templates import PLACEHOLDERS, TEMPLATES, Template, get_template, template_names

__all__ = [
    "PLACEHOLDERS",
    "TEMPLATES",
    "Conversation",
    "GenerationParams",
    "GenerationResult",
    "Template",
    "Turn",
    "build_prompt",
    "get_template",
    "parse_conversation",
    "template_names",
    "template_placeholders",
    "validate_params",
]
