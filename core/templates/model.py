"""What a template version says (`TemplateContent`) and one stored version of a template (`Template`).

A version's content is immutable once saved; it is stored as JSON (`to_json` / `from_json`)
and exported as YAML (core.templates.yaml_io) in the same shape. Every template declares the
three standard variables (persona, emotion, topic: the batch grid, the CSV columns and the
`Persona:` lines the reply is checked against) and any custom ones after them; `{turns}` is
not a variable but the number of messages, filled in by generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["STANDARD_VARIABLES", "TURNS", "EdgeCase", "Template", "TemplateContent"]

STANDARD_VARIABLES = ("persona", "emotion", "topic")
TURNS = "turns"


@dataclass(frozen=True)
class EdgeCase:
    """A named scenario twist: its instruction is added to the first user turn of the items it is drawn for."""

    name: str
    instruction: str
    weight: float = 1

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "instruction": self.instruction, "weight": self.weight}


@dataclass(frozen=True)
class TemplateContent:
    """Everything one version of a template says; `variables` keeps its declared order."""

    title: str
    description: str
    system_prompt: str
    user_template: str
    variables: Mapping[str, tuple[str, ...]]
    edge_cases: tuple[EdgeCase, ...] = ()
    min_turns: int = 2
    max_turns: int = 40
    model: str | None = None  # None: the configured default model
    max_tokens: int | None = None  # None: the configured longest reply
    # routing thresholds of this template's conversations (core.quality); None: the settings'
    quality_accept: int | None = None
    quality_review: int | None = None
    judge: bool = False  # the optional LLM judge scores this template's batch conversations (core.quality.judge)

    def values(self, name: str) -> tuple[str, ...]:
        return tuple(self.variables.get(name, ()))

    @property
    def custom_variables(self) -> tuple[str, ...]:
        return tuple(n for n in self.variables if n not in STANDARD_VARIABLES)

    def edge_case(self, name: str) -> EdgeCase | None:
        return next((e for e in self.edge_cases if e.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The stored form (template_versions.content), also the YAML file's body; keys in a fixed order."""
        return {
            "title": self.title,
            "description": self.description,
            "system_prompt": self.system_prompt,
            "user_template": self.user_template,
            "variables": {name: list(values) for name, values in self.variables.items()},
            "edge_cases": [e.to_json() for e in self.edge_cases],
            "turns": {"min": self.min_turns, "max": self.max_turns},
            "model": self.model,
            "max_tokens": self.max_tokens,
            # only when set: a version without its own thresholds keeps the shape it always had
            **({"quality": {"accept": self.quality_accept, "review": self.quality_review}}
               if self.quality_accept is not None or self.quality_review is not None else {}),
            **({"judge": True} if self.judge else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateContent:
        """The content of a stored version (written by `to_json`, so trusted to have its shape)."""
        turns = data.get("turns") or {}
        quality = data.get("quality") or {}
        return cls(
            title=str(data["title"]), description=str(data.get("description") or ""),
            system_prompt=str(data["system_prompt"]), user_template=str(data["user_template"]),
            variables={str(k): tuple(str(v) for v in vs) for k, vs in dict(data["variables"]).items()},
            edge_cases=tuple(EdgeCase(str(e["name"]), str(e["instruction"]), e.get("weight", 1))
                             for e in data.get("edge_cases") or ()),
            min_turns=int(turns.get("min", 2)), max_turns=int(turns.get("max", 40)),
            model=data.get("model") or None, max_tokens=data.get("max_tokens") or None,
            quality_accept=quality.get("accept"), quality_review=quality.get("review"), judge=bool(data.get("judge")))


@dataclass(frozen=True)
class Template:
    """One version of a template, as generation, batches and the pages use it."""

    name: str  # the slug
    content: TemplateContent
    version: int = 1
    id: str | None = None  # template_versions.id; None: not saved yet
    template_id: str | None = None
    archived: bool = False
    created_by: str | None = None  # the version's author (app_users.id); None: seeded
    created_at: datetime | None = None

    @property
    def title(self) -> str:
        return self.content.title

    @property
    def description(self) -> str:
        return self.content.description

    @property
    def system_prompt(self) -> str:
        return self.content.system_prompt

    @property
    def user_template(self) -> str:
        return self.content.user_template

    @property
    def personas(self) -> tuple[str, ...]:
        return self.content.values("persona")

    @property
    def emotions(self) -> tuple[str, ...]:
        return self.content.values("emotion")

    @property
    def topics(self) -> tuple[str, ...]:
        return self.content.values("topic")

    @property
    def default_persona(self) -> str:
        return self.personas[0]

    @property
    def default_emotion(self) -> str:
        return self.emotions[0]

    @property
    def default_topic(self) -> str:
        return self.topics[0]

    def turns_near(self, preferred: int) -> int:
        """`preferred` if this template's turn range holds it, else the even count in the range nearest to it."""
        lo, hi = self.content.min_turns + self.content.min_turns % 2, self.content.max_turns - self.content.max_turns % 2
        return min(max(preferred, lo), hi) if lo <= hi else preferred

    def default_values(self) -> dict[str, str]:
        """The first suggestion of every custom variable (what an item gets when nothing else is chosen)."""
        return {name: self.content.values(name)[0] for name in self.content.custom_variables
                if self.content.values(name)}
