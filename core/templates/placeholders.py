"""Named placeholders in a template text: `{persona}`, `{turns}`, `{customer}`; `{{` and `}}` are literal braces.

Only plain names are placeholders: a conversion (`{persona!r}`), a format (`{turns:>5}`), an
attribute or index (`{persona.upper}`) or a positional `{}` is refused like an unknown name,
since the value is a person's text and is inserted as it is.
"""

from __future__ import annotations

import difflib
import functools
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from core.errors import ErrorCode

__all__ = ["Problem", "find_placeholders", "render"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template, said for the field it is about."""

    field: str
    message: str
    code: ErrorCode


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    # a batch renders the same texts for every item; parsing them is not free (ValueError is not cached)
    return tuple(string.Formatter().parse(text))


def _shown(name: str, spec: str | None, conversion: str | None) -> str:
    return "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def _unknown(shown: str, name: str, allowed: Collection[str]) -> str:
    guess = difflib.get_close_matches(name.split(".")[0].split("[")[0], sorted(allowed), n=1, cutoff=0.6)
    if guess:
        return f"`{shown}` is not a variable of this template — did you mean `{{{guess[0]}}}`?"
    known = ", ".join(f"`{{{a}}}`" for a in allowed)
    return f"`{shown}` is not a variable of this template; its placeholders are {known}."


def find_placeholders(text: str, allowed: Collection[str], *, field: str) -> tuple[list[str], list[Problem]]:
    """The placeholder names `text` uses, and what is wrong with it (unbalanced braces, unknown names)."""
    try:
        parsed = _parse(text)
    except ValueError as exc:
        return [], [Problem(field, f"The braces are not balanced ({exc}). Write a literal brace as {{{{ or }}}}.",
                            ErrorCode.INVALID_TEMPLATE)]
    names: list[str] = []
    problems: list[Problem] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if "{" in name or (spec and "{" in spec):
            # "{topic {persona}" parses as one odd name; for a person it is a brace left open
            problems.append(Problem(field, f"The braces are not balanced (`{{{name.split('{')[0]}` is not closed "
                                    "before the next '{'). Write a literal brace as {{ or }}.",
                                    ErrorCode.INVALID_TEMPLATE))
            continue
        if name not in allowed or spec or conversion:
            problems.append(Problem(field, _unknown(_shown(name, spec, conversion), name, allowed),
                                    ErrorCode.UNKNOWN_PLACEHOLDER))
            continue
        names.append(name)
    return names, problems


def render(text: str, values: Mapping[str, object]) -> str:
    """`text` with each placeholder replaced by its value as text (a checked text: every name is in `values`)."""
    return "".join(literal + (str(values[name]) if name is not None else "")
                   for literal, name, _spec, _conversion in _parse(text))
