"""Prompt construction: validated parameters -> (system prompt, user message).

Turn rule: `turns` is the total number of messages, user and assistant counted one by one,
from settings.generation_min_turns to settings.generation_max_turns (2..40) and **even**,
so every conversation starts with the user and ends with the assistant's reply — the shape
a fine-tuning example needs.

The user message always ends with a machine-readable block (``Persona: …``, ``Emotion: …``,
``Topic: …``, ``Turns: N``) and the answer-format instructions, whatever the template says,
so the reply can be parsed and the sandbox can imitate it; a custom variable adds its own line
after them, and an edge case's instruction follows the template's instruction.

The system prompt is sent as written (braces in it are text): it is the prefix every
conversation of a template shares, the part prompt caching can reuse.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.generation.templates import get_template
from core.llm.pricing import MODELS
from core.redact import redact_text
from core.templates.model import STANDARD_VARIABLES, TURNS, Template
from core.templates.placeholders import find_placeholders, render

if TYPE_CHECKING:
    from core.generation.models import GenerationParams

__all__ = ["build_prompt", "item_values", "prompt_for", "render_user_template", "template_placeholders", "validate_params"]

_FORMAT_INSTRUCTIONS = (
    "Answer with the conversation only, exactly {turns} messages, alternating and starting with the user.\n"
    "Start each message at the beginning of a line with \"User:\" or \"Assistant:\" followed by its text, "
    "and separate messages with one blank line.\n"
    "Write nothing before the first message and nothing after the last one: no title, no notes, no "
    "markdown."
)


def _invalid(field: str, message: str, code: ErrorCode = ErrorCode.INVALID_INPUT) -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, field=field, user_message=message)


def template_placeholders(text: str, *, field: str = "user_template",
                          allowed: tuple[str, ...] = (*STANDARD_VARIABLES, TURNS)) -> list[str]:
    """The placeholder names used in `text`; ValidationError naming `field` if any is unknown or malformed."""
    names, problems = find_placeholders(text, allowed, field=field)
    if problems:
        raise _invalid(field, problems[0].message, problems[0].code)
    return names


def _clean(value: Any) -> str:
    # one line, so the `Persona: …` lines stay machine-readable
    return re.sub(r"\s+", " ", str(value if value is not None else "")).strip()


def item_values(params: GenerationParams, template: Template) -> dict[str, str]:
    """Every variable's value for `params`: persona, emotion, topic, then each custom one (given, or its first)."""
    values = {name: _clean(getattr(params, name)) for name in STANDARD_VARIABLES}
    given = params.variables or {}
    for name in template.content.custom_variables:
        values[name] = _clean(given[name]) if name in given else template.content.values(name)[0]
    return values


def _refuse_secrets(name: str, value: str) -> None:
    """A value the redactor would change holds a secret: refused, since it would be sent and stored as typed."""
    if redact_text(value) != value:
        raise _invalid(name, f"The {name.replace('_', ' ')} looks like it holds a secret (an API key, a token or a "
                       f"password). Remove it: it would be sent to the model and stored with the conversation.",
                       ErrorCode.INVALID_INPUT)


def validate_params(params: GenerationParams, template: Template | None = None) -> Template:
    """Check every field of `params`; returns the template. Raises ValidationError(field=...).

    `template`: an unsaved template to check against (the editor's preview and "Try it") instead
    of the stored version `params` names.
    """
    settings = get_settings()
    template = template or get_template(params.template, params.template_version)
    for name, value in item_values(params, template).items():
        if not value:
            raise _invalid(name, f"The {name} is missing. Enter a {name} or pick one of the suggestions.",
                           ErrorCode.MISSING_VALUE)
        if len(value) > settings.generation_max_field_chars:
            raise _invalid(name, f"The {name} is {len(value)} characters long; the limit is "
                           f"{settings.generation_max_field_chars}.", ErrorCode.TOO_LONG)
        _refuse_secrets(name, value)
    unknown = sorted(set(params.variables or {}) - set(template.content.custom_variables))
    if unknown:
        raise _invalid("variables", f"{unknown[0][:40]!r} is not a variable of the template {template.name!r}.",
                       ErrorCode.UNKNOWN_PLACEHOLDER)
    if params.edge_case is not None and template.content.edge_case(params.edge_case) is None:
        raise _invalid("edge_case", f"The template {template.name!r} has no edge case {params.edge_case[:60]!r}.",
                       ErrorCode.INVALID_INPUT)
    turns = params.turns
    lo, hi = settings.generation_min_turns, settings.generation_max_turns
    if isinstance(turns, bool) or not isinstance(turns, int):
        raise _invalid("turns", f"The number of turns must be a whole number from {lo} to {hi}.")
    if not lo <= turns <= hi:
        raise _invalid("turns", f"The number of turns must be from {lo} to {hi}; got {turns}.", ErrorCode.OUT_OF_RANGE)
    if turns % 2:
        raise _invalid("turns", f"The number of turns must be even (user and assistant messages in pairs, "
                       f"ending with the assistant); got {turns}.", ErrorCode.ODD_TURNS)
    tlo, thi = template.content.min_turns, template.content.max_turns
    if not tlo <= turns <= thi:
        raise _invalid("turns", f"The template {template.title!r} asks for {tlo} to {thi} messages; got {turns}.",
                       ErrorCode.OUT_OF_RANGE)
    if params.model is not None and params.model not in MODELS:
        raise _invalid("model", f"Unknown model {params.model!r}. Choose a model from the list.", ErrorCode.UNKNOWN_MODEL)
    for name in ("system_prompt", "user_template"):
        text = getattr(params, name)
        if text is not None and len(text) > settings.generation_max_template_chars:
            raise _invalid(name, f"The text is {len(text)} characters long; the limit is "
                           f"{settings.generation_max_template_chars}.", ErrorCode.TOO_LONG)
        if text is not None:
            _refuse_secrets(name, text)
    if params.system_prompt is not None and not params.system_prompt.strip():
        raise _invalid("system_prompt", "The system prompt is empty.", ErrorCode.MISSING_VALUE)
    user_template = params.user_template if params.user_template is not None else template.user_template
    if not user_template.strip():
        raise _invalid("user_template", "The user prompt template is empty.", ErrorCode.MISSING_VALUE)
    template_placeholders(user_template, allowed=(*template.content.variables, TURNS))
    # the system prompt is sent as written: braces in it are text, never placeholders
    return template


def render_user_template(text: str, params: GenerationParams, template: Template | None = None) -> str:
    """Fill the placeholders of a (validated) template text with the values of `params`."""
    template = template or get_template(params.template, params.template_version)
    values: dict[str, object] = {**item_values(params, template), TURNS: params.turns}
    template_placeholders(text, allowed=tuple(values))
    return render(text, values)


def build_prompt(params: GenerationParams, template: Template | None = None) -> tuple[str, str]:
    """(system prompt, user message) for `params`; raises ValidationError(field=...) on bad input."""
    system, user, _template = prompt_for(params, template)
    return system, user


def prompt_for(params: GenerationParams, template: Template | None = None) -> tuple[str, str, Template]:
    """`build_prompt`, and the template version it was built from (its model and max tokens)."""
    template = validate_params(params, template)
    system = (params.system_prompt if params.system_prompt is not None else template.system_prompt).strip()
    body = render_user_template(
        params.user_template if params.user_template is not None else template.user_template, params,
        template).strip()
    edge = template.content.edge_case(params.edge_case) if params.edge_case is not None else None
    if edge is not None:
        body = f"{body}\n\n{render_user_template(edge.instruction, params, template).strip()}"
    values = item_values(params, template)
    spec = "\n".join((
        *(f"{name.replace('_', ' ').capitalize()}: {value}" for name, value in values.items()),
        f"Turns: {params.turns}",
    ))
    user = f"{body}\n\n{spec}\n\n{_FORMAT_INSTRUCTIONS.format(turns=params.turns)}"
    return system, user, template
