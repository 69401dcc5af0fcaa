"""Prompt construction: validated parameters -> (system prompt, user message).

Turn rule: `turns` is the total number of messages, user and assistant counted one by one,
from settings.generation_min_turns to settings.generation_max_turns (2..40) and **even**,
so every conversation starts with the user and ends with the assistant's reply — the shape
a fine-tuning example needs.

The user message always ends with a machine-readable block (``Persona: …``, ``Emotion: …``,
``Topic: …``, ``Turns: N``) and the answer-format instructions, whatever the template says,
so the reply can be parsed and the sandbox can imitate it.
"""

from __future__ import annotations

import functools
import re
import string
from typing import TYPE_CHECKING, Any

from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.generation.templates import PLACEHOLDERS, Template, get_template
from core.llm.pricing import MODELS

if TYPE_CHECKING:
    from core.generation.models import GenerationParams

__all__ = ["build_prompt", "render_user_template", "template_placeholders", "validate_params"]

_FORMAT_INSTRUCTIONS = (
    "Answer with the conversation only, exactly {turns} messages, alternating and starting with the user.\n"
    "Start each message at the beginning of a line with \"User:\" or \"Assistant:\" followed by its text, "
    "and separate messages with one blank line.\n"
    "Write nothing before the first message and nothing after the last one: no title, no notes, no "
    "markdown."
)


def _invalid(field: str, message: str, code: ErrorCode = ErrorCode.INVALID_INPUT) -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, field=field, user_message=message)


def template_placeholders(text: str, *, field: str = "user_template") -> list[str]:
    """The placeholder names used in `text`; ValidationError naming `field` if any is unknown or malformed."""
    try:
        parsed = _parse_template(text)
    except ValueError as exc:
        raise _invalid(field, f"The template's braces are not balanced ({exc}). Write a literal brace "
                       "as {{ or }}.", ErrorCode.INVALID_TEMPLATE) from None
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise _invalid(
                field, f"The template uses an unknown placeholder {shown}. Allowed: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".", ErrorCode.UNKNOWN_PLACEHOLDER)
        names.append(name)
    return names


@functools.lru_cache(maxsize=64)
def _parse_template(text: str) -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    # a batch renders the same template for every item, twice; parsing it is not free (ValueError is not cached)
    return tuple(string.Formatter().parse(text))


def _clean(value: Any) -> str:
    # one line, so the `Persona: …` lines stay machine-readable
    return re.sub(r"\s+", " ", str(value if value is not None else "")).strip()


def validate_params(params: GenerationParams) -> Template:
    """Check every field of `params`; returns the template. Raises ValidationError(field=...)."""
    settings = get_settings()
    template = get_template(params.template)
    for name in ("persona", "emotion", "topic"):
        value = _clean(getattr(params, name))
        if not value:
            raise _invalid(name, f"The {name} is missing. Enter a {name} or pick one of the suggestions.",
                           ErrorCode.MISSING_VALUE)
        if len(value) > settings.generation_max_field_chars:
            raise _invalid(name, f"The {name} is {len(value)} characters long; the limit is "
                           f"{settings.generation_max_field_chars}.", ErrorCode.TOO_LONG)
    turns = params.turns
    lo, hi = settings.generation_min_turns, settings.generation_max_turns
    if isinstance(turns, bool) or not isinstance(turns, int):
        raise _invalid("turns", f"The number of turns must be a whole number from {lo} to {hi}.")
    if not lo <= turns <= hi:
        raise _invalid("turns", f"The number of turns must be from {lo} to {hi}; got {turns}.", ErrorCode.OUT_OF_RANGE)
    if turns % 2:
        raise _invalid("turns", f"The number of turns must be even (user and assistant messages in pairs, "
                       f"ending with the assistant); got {turns}.", ErrorCode.ODD_TURNS)
    if params.model is not None and params.model not in MODELS:
        raise _invalid("model", f"Unknown model {params.model!r}. Choose a model from the list.", ErrorCode.UNKNOWN_MODEL)
    for name in ("system_prompt", "user_template"):
        text = getattr(params, name)
        if text is not None and len(text) > settings.generation_max_template_chars:
            raise _invalid(name, f"The text is {len(text)} characters long; the limit is "
                           f"{settings.generation_max_template_chars}.", ErrorCode.TOO_LONG)
    if params.system_prompt is not None and not params.system_prompt.strip():
        raise _invalid("system_prompt", "The system prompt is empty.", ErrorCode.MISSING_VALUE)
    user_template = params.user_template if params.user_template is not None else template.user_template
    if not user_template.strip():
        raise _invalid("user_template", "The user prompt template is empty.", ErrorCode.MISSING_VALUE)
    template_placeholders(user_template)
    # the system prompt is sent as written: braces in it are text, never placeholders
    return template


def render_user_template(text: str, params: GenerationParams) -> str:
    """Fill the four placeholders of a (validated) template text."""
    template_placeholders(text)
    return text.format(
        persona=_clean(params.persona), emotion=_clean(params.emotion), topic=_clean(params.topic),
        turns=params.turns)


def build_prompt(params: GenerationParams) -> tuple[str, str]:
    """(system prompt, user message) for `params`; raises ValidationError(field=...) on bad input."""
    template = validate_params(params)
    system = (params.system_prompt if params.system_prompt is not None else template.system_prompt).strip()
    body = render_user_template(
        params.user_template if params.user_template is not None else template.user_template, params).strip()
    spec = "\n".join((
        f"Persona: {_clean(params.persona)}",
        f"Emotion: {_clean(params.emotion)}",
        f"Topic: {_clean(params.topic)}",
        f"Turns: {params.turns}",
    ))
    user = f"{body}\n\n{spec}\n\n{_FORMAT_INSTRUCTIONS.format(turns=params.turns)}"
    return system, user
