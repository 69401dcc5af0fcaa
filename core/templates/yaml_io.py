"""Template files: one YAML file per template, read and written in one fixed shape (README, "Template files").

`dump()` writes a template's latest (or any) version; `load()` reads a file back into a slug and
a `TemplateContent`, refusing anything that is not exactly the schema with a `TemplateFileInvalid`
that names every wrong field and why. A file `dump()` wrote, loaded and dumped again, is the same
bytes. The file holds no version number: importing it makes the next version wherever it goes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.templates.model import EdgeCase, Template, TemplateContent
from core.templates.placeholders import Problem
from core.templates.validate import check_slug, problems

__all__ = ["HEADER", "TemplateFileInvalid", "dump", "load"]

HEADER = "# LoRA Conversation Studio template; the fields are described in the README, \"Template files\".\n"

_FIELDS = ("name", "title", "description", "system_prompt", "user_template", "variables", "edge_cases", "turns",
           "model", "max_tokens", "quality", "judge")
_REQUIRED = ("name", "title", "system_prompt", "user_template", "variables")
_EDGE_FIELDS = ("name", "instruction", "weight")


class TemplateFileInvalid(ValidationError):
    """A template file that cannot be imported; `problems` names each wrong field and why."""

    def __init__(self, found: list[Problem]) -> None:
        text = "; ".join(f"{p.field}: {p.message}" for p in found)
        super().__init__(text, code=ErrorCode.INVALID_TEMPLATE_FILE, field=found[0].field, user_message=text)
        self.problems = found


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # several lines as a literal block, so a prompt reads in the file as it reads on the page
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def dump(template: Template) -> str:
    """The YAML file of `template` (its content and name; no version number)."""
    doc = {"name": template.name, **template.content.to_json()}
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000,
                     default_flow_style=False)
    return HEADER + body


def _problem(field: str, message: str) -> Problem:
    return Problem(field, message, ErrorCode.INVALID_TEMPLATE_FILE)


def _parse(data: bytes | str) -> Any:
    limit = get_settings().template_max_file_bytes
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > limit:
        raise TemplateFileInvalid([_problem("file", f"The file is {len(raw):,} bytes; the limit is {limit:,}.")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TemplateFileInvalid([_problem("file", f"The file is not valid UTF-8 text (invalid byte at line "
                                            f"{line}); save it as UTF-8.")]) from None
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "the file"
        raise TemplateFileInvalid([_problem("file", f"It is not valid YAML at {where}: {exc.problem}.")]) from None
    except yaml.YAMLError as exc:
        raise TemplateFileInvalid([_problem("file", f"It is not valid YAML: {str(exc)[:200]}.")]) from None


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _variables(value: Any, out: list[Problem]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        out.append(_problem("variables", "must map each variable's name to a list of suggested values."))
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        field = f"variables.{name}"
        if not _is_text(name):
            out.append(_problem("variables", f"the variable name {name!r} must be text."))
            continue
        if not isinstance(values, list):
            out.append(_problem(field, "must be a list of suggested values (one '- value' a line)."))
            continue
        bad = next((i for i, v in enumerate(values, start=1) if not _is_text(v)), None)
        if bad is not None:
            out.append(_problem(field, f"value {bad} must be text; put it in quotes."))
            continue
        found[name] = tuple(values)
    return found


def _edge_cases(value: Any, out: list[Problem]) -> tuple[EdgeCase, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        out.append(_problem("edge_cases", "must be a list of edge cases, each with a name, an instruction and a "
                            "weight."))
        return ()
    found: list[EdgeCase] = []
    for n, item in enumerate(value, start=1):
        field = f"edge_cases.{n}"
        if not isinstance(item, Mapping):
            out.append(_problem(field, "must have a name, an instruction and a weight."))
            continue
        extra = [k for k in item if k not in _EDGE_FIELDS]
        if extra:
            out.append(_problem(f"{field}.{extra[0]}", f"is not a field of an edge case (they are: "
                                f"{', '.join(_EDGE_FIELDS)})."))
        name, instruction, weight = item.get("name"), item.get("instruction"), item.get("weight", 1)
        for key, v in (("name", name), ("instruction", instruction)):
            if not _is_text(v):
                out.append(_problem(f"{field}.{key}", "is missing." if v is None else "must be text."))
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            out.append(_problem(f"{field}.weight", "must be a number above 0."))
            weight = 1
        if isinstance(name, str) and isinstance(instruction, str):
            found.append(EdgeCase(name, instruction, weight))
    return tuple(found)


def _turns(value: Any, out: list[Problem]) -> tuple[int, int]:
    s = get_settings()
    if value is None:
        return s.generation_min_turns, s.generation_max_turns
    if not isinstance(value, Mapping) or set(value) != {"min", "max"}:
        out.append(_problem("turns", "must give the turn range as min and max (e.g. turns: {min: 2, max: 12})."))
        return s.generation_min_turns, s.generation_max_turns
    if not (_is_whole(value["min"]) and _is_whole(value["max"])):
        out.append(_problem("turns", "min and max must be whole numbers."))
        return s.generation_min_turns, s.generation_max_turns
    return int(value["min"]), int(value["max"])


def load(data: bytes | str) -> tuple[str, TemplateContent]:
    """The slug and content of a template file; TemplateFileInvalid naming every wrong field and why."""
    doc = _parse(data)
    if not isinstance(doc, Mapping):
        raise TemplateFileInvalid([_problem("file", f"It must be a mapping of fields ({', '.join(_REQUIRED)}, ...); "
                                            "see the README, \"Template files\".")])
    out: list[Problem] = []
    for key in doc:
        if key not in _FIELDS:
            out.append(_problem(str(key)[:60], f"is not a field of a template file (they are: {', '.join(_FIELDS)})."))
    for key in _REQUIRED:
        if doc.get(key) is None:
            out.append(_problem(key, "is missing."))
    for key in ("name", "title", "description", "system_prompt", "user_template", "model"):
        if doc.get(key) is not None and not _is_text(doc[key]):
            out.append(_problem(key, "must be text."))
    max_tokens = doc.get("max_tokens")
    if max_tokens is not None and not _is_whole(max_tokens):
        out.append(_problem("max_tokens", "must be a whole number (or null for the configured longest reply)."))
    quality = doc.get("quality")
    if quality is not None and (not isinstance(quality, Mapping) or set(quality) - {"accept", "review"}):
        out.append(_problem("quality", "must give the routing scores as accept and review "
                                       "(e.g. quality: {accept: 85, review: 60}), or be left out."))
        quality = None
    quality = quality or {}
    for key in ("accept", "review"):
        if quality.get(key) is not None and not _is_whole(quality[key]):
            out.append(_problem(f"quality.{key}", "must be a whole number from 0 to 100 (or null for the setting)."))
    if doc.get("judge") is not None and not isinstance(doc["judge"], bool):
        out.append(_problem("judge", "must be true or false (the optional LLM judge for this template's batches)."))
    variables = _variables(doc.get("variables"), out) if doc.get("variables") is not None else {}
    edges = _edge_cases(doc.get("edge_cases"), out)
    min_turns, max_turns = _turns(doc.get("turns"), out)
    if out:
        raise TemplateFileInvalid(out)
    slug = str(doc["name"])
    content = TemplateContent(
        title=doc["title"], description=doc.get("description") or "", system_prompt=doc["system_prompt"],
        user_template=doc["user_template"], variables=variables, edge_cases=edges, min_turns=min_turns,
        max_turns=max_turns, model=doc.get("model"), max_tokens=max_tokens,
        quality_accept=quality.get("accept"), quality_review=quality.get("review"), judge=doc.get("judge") is True)
    found = [*(_problem("name", p.message) for p in check_slug(slug)),
             *(Problem(p.field, p.message, p.code) for p in problems(content))]
    if found:
        raise TemplateFileInvalid(found)
    return slug, content
