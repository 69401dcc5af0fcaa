"""Templates and scenarios as versioned data: the content model, validation, storage, YAML and coverage.

A template is a slug and a list of immutable versions; a version says the system prompt, the
first-user-turn instruction with its named placeholders, the variables with their suggested
values, edge cases, the turn range, a default model and max tokens. The six built-ins are
version 1 of six seeded templates (core.templates.builtin).
"""

from core.templates.model import STANDARD_VARIABLES, TURNS, EdgeCase, Template, TemplateContent
from core.templates.placeholders import Problem, find_placeholders, render
from core.templates.validate import TemplateInvalid, check, problems

__all__ = [
    "STANDARD_VARIABLES",
    "TURNS",
    "EdgeCase",
    "Problem",
    "Template",
    "TemplateContent",
    "TemplateInvalid",
    "check",
    "find_placeholders",
    "problems",
    "render",
]
