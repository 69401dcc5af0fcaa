"""Every rule a template version must keep, each broken rule said beside the field it is about.

`problems()` lists them all (the editor shows each under its field); `check()` raises the first
as a `TemplateInvalid` carrying the whole list. Nothing invalid is ever saved: the store calls
`check()` before it writes, so the previous version stays in force.

Fields are named as in the YAML file: `slug`, `title`, `system_prompt`, `user_template`,
`variables.<name>`, `edge_cases.<n>.name|instruction|weight` (n from 1), `turns`, `model`, `max_tokens`,
`quality.accept|review` (the template's routing scores).
"""

from __future__ import annotations

import math
import re
from typing import Any

from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.llm.pricing import MODELS
from core.templates.model import STANDARD_VARIABLES, TURNS, TemplateContent
from core.templates.placeholders import Problem, find_placeholders

__all__ = ["SLUG_PATTERN", "TemplateInvalid", "check", "check_slug", "problems", "prompt_tokens"]

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,63}")
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")


class TemplateInvalid(ValidationError):
    """A template that breaks one or more rules; `problems` has each, `field` the first one's field."""

    def __init__(self, found: list[Problem]) -> None:
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        super().__init__(f"{first.field}: {first.message}{more}", code=first.code, field=first.field,
                         user_message=first.message)
        self.problems = found


def check_slug(slug: str) -> list[Problem]:
    if not SLUG_PATTERN.fullmatch(slug or ""):
        return [Problem("slug", f"The name {slug[:70]!r} is not a template name: use 2 to 64 lower-case letters, "
                        "digits and underscores, starting with a letter (e.g. insurance_claim).",
                        ErrorCode.INVALID_TEMPLATE)]
    return []


def _text(field: str, value: str, label: str, limit: int, out: list[Problem]) -> None:
    if not value.strip():
        out.append(Problem(field, f"The {label} is empty.", ErrorCode.MISSING_VALUE))
    elif len(value) > limit:
        out.append(Problem(field, f"The {label} is {len(value):,} characters long; the limit is {limit:,}.",
                           ErrorCode.TOO_LONG))


def _variables(content: TemplateContent, out: list[Problem]) -> None:
    s = get_settings()
    for name in STANDARD_VARIABLES:
        if name not in content.variables:
            out.append(Problem(f"variables.{name}", f"Every template declares `{{{name}}}` with at least one value.",
                               ErrorCode.MISSING_VALUE))
    if len(content.variables) > s.template_max_variables:
        out.append(Problem("variables", f"The template declares {len(content.variables)} variables; the limit is "
                           f"{s.template_max_variables}.", ErrorCode.TOO_LONG))
    for name, values in content.variables.items():
        field = f"variables.{name}"
        if name == TURNS:
            out.append(Problem(field, "`{turns}` is the number of messages, filled in for every conversation; it "
                               "cannot be declared as a variable.", ErrorCode.INVALID_TEMPLATE))
            continue
        if not _NAME_PATTERN.fullmatch(name):
            out.append(Problem(field, f"{name[:50]!r} is not a variable name: use lower-case letters, digits and "
                               "underscores, starting with a letter (at most 40).", ErrorCode.INVALID_TEMPLATE))
            continue
        if not [v for v in values if v.strip()]:
            out.append(Problem(field, f"The variable `{{{name}}}` has no values; give at least one.",
                               ErrorCode.EMPTY_CHOICE))
            continue
        if len(values) > s.template_max_values:
            out.append(Problem(field, f"`{{{name}}}` has {len(values):,} values; the limit is {s.template_max_values:,}.",
                               ErrorCode.TOO_LONG))
        for value in values:
            if not value.strip():
                out.append(Problem(field, f"A value of `{{{name}}}` is empty.", ErrorCode.EMPTY_VALUE))
                break
            if len(value) > s.generation_max_field_chars:
                out.append(Problem(field, f"A value of `{{{name}}}` is {len(value):,} characters long; the limit is "
                                   f"{s.generation_max_field_chars:,}.", ErrorCode.TOO_LONG))
                break
        if len(set(values)) < len(values):
            out.append(Problem(field, f"`{{{name}}}` lists the same value twice.", ErrorCode.INVALID_TEMPLATE))


def _edge_cases(content: TemplateContent, allowed: list[str], used: set[str], out: list[Problem]) -> None:
    s = get_settings()
    if len(content.edge_cases) > s.template_max_edge_cases:
        out.append(Problem("edge_cases", f"The template has {len(content.edge_cases)} edge cases; the limit is "
                           f"{s.template_max_edge_cases}.", ErrorCode.TOO_LONG))
    seen: set[str] = set()
    for n, edge in enumerate(content.edge_cases, start=1):
        field = f"edge_cases.{n}"
        name = edge.name.strip()
        if not name:
            out.append(Problem(f"{field}.name", f"Edge case {n} has no name.", ErrorCode.MISSING_VALUE))
        elif len(name) > s.generation_max_field_chars:
            out.append(Problem(f"{field}.name", f"The name of edge case {n} is {len(name):,} characters long; the "
                               f"limit is {s.generation_max_field_chars:,}.", ErrorCode.TOO_LONG))
        elif name in seen:
            out.append(Problem(f"{field}.name", f"Two edge cases are called {name[:60]!r}; names must differ.",
                               ErrorCode.INVALID_TEMPLATE))
        seen.add(name)
        _text(f"{field}.instruction", edge.instruction, f"instruction of edge case {n}",
              s.generation_max_template_chars, out)
        names, found = find_placeholders(edge.instruction, allowed, field=f"{field}.instruction")
        used.update(names)
        out.extend(found)
        weight: Any = edge.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            out.append(Problem(f"{field}.weight", f"The weight of edge case {n} must be a number above 0; got "
                               f"{str(weight)[:20]}.", ErrorCode.OUT_OF_RANGE))


def _turns(content: TemplateContent, out: list[Problem]) -> None:
    s = get_settings()
    lo, hi = s.generation_min_turns, s.generation_max_turns
    tmin, tmax = content.min_turns, content.max_turns
    if any(isinstance(t, bool) or not isinstance(t, int) for t in (tmin, tmax)):
        out.append(Problem("turns", f"The turn range must be whole numbers within {lo}–{hi}.", ErrorCode.OUT_OF_RANGE))
    elif tmin < lo or tmax > hi:
        out.append(Problem("turns", f"The turn range must be within {lo}–{hi}; got {tmin}–{tmax}.",
                           ErrorCode.OUT_OF_RANGE))
    elif tmin > tmax:
        out.append(Problem("turns", f"The turn range's lowest ({tmin}) is above its highest ({tmax}).",
                           ErrorCode.OUT_OF_RANGE))
    elif tmin == tmax and tmin % 2:
        out.append(Problem("turns", f"The turn range {tmin}–{tmax} holds no even number of messages (a conversation "
                           "ends with the assistant's reply).", ErrorCode.ODD_TURNS))


def _model(content: TemplateContent, out: list[Problem]) -> None:
    if content.model is not None and content.model not in MODELS:
        out.append(Problem("model", f"Unknown model {content.model[:60]!r}. Choose a model from the list.",
                           ErrorCode.UNKNOWN_MODEL))
    most = get_settings().max_output_tokens
    mt: Any = content.max_tokens
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or not 1 <= mt <= most):
        out.append(Problem("max_tokens", f"Max tokens must be a whole number from 1 to {most:,}; got {str(mt)[:20]}.",
                           ErrorCode.OUT_OF_RANGE))


def _quality(content: TemplateContent, out: list[Problem]) -> None:
    s = get_settings()
    found: dict[str, int] = {}
    for key, value in (("accept", content.quality_accept), ("review", content.quality_review)):
        v: Any = value
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
            out.append(Problem(f"quality.{key}", f"The {key} score must be a whole number from 0 to 100; "
                               f"got {str(v)[:20]}.", ErrorCode.OUT_OF_RANGE))
            return
        found[key] = v
    accept = found.get("accept", s.quality_accept_score)
    review = found.get("review", s.quality_review_score)
    if found and review > accept:
        out.append(Problem("quality.review", f"The review score ({review}) is above the accept score ({accept}): "
                           "nothing could wait for review.", ErrorCode.OUT_OF_RANGE))


def prompt_tokens(content: TemplateContent) -> int:
    """The estimated input tokens of the longest prompt this template renders (longest values, edge case, turns)."""
    s = get_settings()
    longest = {name: max(values, key=len) if values else "" for name, values in content.variables.items()}
    values_chars = sum(len(v) for v in longest.values())
    instructions = max((len(e.instruction) for e in content.edge_cases), default=0)
    # each placeholder at most the longest value; the brief lines repeat the values once more
    chars = len(content.system_prompt) + len(content.user_template) + instructions + 2 * values_chars + 600
    return s.estimated_tokens("x" * chars) + 2 * s.estimate_tokens_per_message


def _length(content: TemplateContent, out: list[Problem]) -> None:
    s = get_settings()
    model = content.model or s.default_model
    reply = content.max_tokens or s.max_output_tokens
    tokens = prompt_tokens(content)
    if tokens + reply > s.model_context_tokens:
        out.append(Problem("user_template", f"The rendered prompt is about {tokens:,} tokens; with {reply:,} tokens "
                           f"for the reply it is more than the {s.model_context_tokens:,} tokens {model} accepts.",
                           ErrorCode.TOO_LONG))


def problems(content: TemplateContent, *, slug: str | None = None) -> list[Problem]:
    """Every rule `content` (and `slug`, if given) breaks; empty when it may be saved."""
    s = get_settings()
    out: list[Problem] = check_slug(slug) if slug is not None else []
    _text("title", content.title, "title", s.batch_name_max_chars, out)
    if len(content.description) > s.generation_max_template_chars:
        out.append(Problem("description", f"The description is {len(content.description):,} characters long; the "
                           f"limit is {s.generation_max_template_chars:,}.", ErrorCode.TOO_LONG))
    _text("system_prompt", content.system_prompt, "system prompt", s.generation_max_template_chars, out)
    _text("user_template", content.user_template, "first-user-turn instruction", s.generation_max_template_chars, out)
    _variables(content, out)
    # in declared order, so a refusal lists them as the template does
    allowed = [n for n in (*content.variables, TURNS) if n == TURNS or _NAME_PATTERN.fullmatch(n)]
    names, found = find_placeholders(content.user_template, allowed, field="user_template")
    out.extend(found)
    used = set(names)
    _edge_cases(content, allowed, used, out)
    _quality(content, out)
    # a text whose braces do not parse uses nothing we can tell: saying every variable is unused would be noise
    unreadable = any(p.code is ErrorCode.INVALID_TEMPLATE and p.field.endswith(("user_template", "instruction"))
                     for p in out)
    for name in content.variables:
        if unreadable:
            break
        if name in allowed and name not in used and f"variables.{name}" not in {p.field for p in out}:
            out.append(Problem(f"variables.{name}", f"The variable `{{{name}}}` is declared but no prompt uses it; use "
                               "it in the first-user-turn instruction or an edge case, or remove it.",
                               ErrorCode.UNUSED_VARIABLE))
    _turns(content, out)
    _model(content, out)
    if not out:
        _length(content, out)
    return out


def check(content: TemplateContent, *, slug: str | None = None) -> None:
    """Raise TemplateInvalid (every problem, the first one's field) unless `content` keeps every rule."""
    found = problems(content, slug=slug)
    if found:
        raise TemplateInvalid(found)
