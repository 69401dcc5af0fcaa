"""The kind of model both the app's settings and the sandbox's config are: typed, bounded, plain-spoken.

A field declares its type and bounds (``ge``/``gt``/``le``) and a plain-language ``title``;
inf and NaN are never a value. Values may arrive as text (environment variables, a form, a
CLI option, JSON), and are read the same way in both models: a flag from yes/no/on/off/true/
false/1/0 (empty: off), a list of whole numbers from "429, 503", an optional value from ""
/ none / null. A refusal names the setting and says what is allowed, in words, from the same
declaration the UI reads its labels and bounds from.
"""

from __future__ import annotations

import types
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

__all__ = ["CheckedModel", "described", "fraction", "non_negative", "positive"]

_NO_VALUE = ("", "none", "null")


def positive(default: Any, title: str) -> Any:
    """A number above 0."""
    return Field(default, gt=0, title=title)


def non_negative(default: Any, title: str, *, zero: str = "") -> Any:
    """A number of 0 or more; `zero` says what 0 means, when it means something ("off", "no limit")."""
    return Field(default, ge=0, title=title, json_schema_extra={"zero": zero} if zero else None)


def described(default: Any, title: str, allowed: str) -> Any:
    """A value whose rule a validator checks; `allowed` says it in words, for messages and the UI."""
    return Field(default, title=title, json_schema_extra={"allowed": allowed})


def fraction(default: float, title: str, *, above_zero: bool = False) -> Any:
    """A share from 0 (or just above it) to 1."""
    return Field(default, gt=0, le=1, title=title) if above_zero else Field(default, ge=0, le=1, title=title)


def _optional(kind: Any) -> tuple[Any, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    if get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        return (inner[0] if len(inner) == 1 else kind), len(inner) < len(get_args(kind))
    return kind, False


class CheckedModel(BaseModel):
    """An immutable model whose refusals are `error` exceptions worded for a person.

    `replace(**changes)` makes a validated copy; a subclass names its settings in messages
    through `subject()` and lists the ones whose value is never shown in `hidden`.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid", validate_default=True)

    error: ClassVar[type[ValueError]] = ValueError
    hidden: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def subject(cls, name: str) -> str:
        """How a message names setting `name`."""
        return f"Setting {name}"

    @field_validator("*", mode="before")
    @classmethod
    def _read_text(cls, value: Any, info: ValidationInfo) -> Any:
        kind, optional = _optional(cls.model_fields[str(info.field_name)].annotation)
        if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NO_VALUE)):
            return None
        if kind is bool and isinstance(value, str) and not value.strip():
            return False
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError(f"{'a whole number' if kind is int else 'a number'}, not true or false")
        if get_origin(kind) is tuple and isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    def __init__(self, /, **values: Any) -> None:
        """`values` validated; a refusal raises `error` naming every setting at fault."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise self.error(self.refusal_text(exc)) from None

    def replace(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied (values may be text, as from a form or a CLI)."""
        return type(self)(**{**dict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dict(self)

    @classmethod
    def allowed(cls, name: str) -> str:
        """What field `name` accepts, in words: "a whole number > 0", "a fraction from 0 to 1", ..."""
        info = cls.model_fields[name]
        kind, optional = _optional(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("allowed"):
            return str(extra["allowed"])
        if get_origin(kind) is Literal:
            return "one of " + ", ".join(str(a) for a in get_args(kind))
        if kind is bool:
            return "true or false"
        if get_origin(kind) is tuple:
            return "whole numbers separated by commas"
        if kind not in (int, float):
            return "text"
        low: tuple[str, Any] | None = None
        high: Any = None
        for bound in info.metadata:
            if isinstance(bound, annotated_types.Gt):
                low = (">", bound.gt)
            elif isinstance(bound, annotated_types.Ge):
                low = (">=", bound.ge)
            elif isinstance(bound, annotated_types.Le):
                high = bound.le
        if kind is float and low is not None and low[1] == 0 and high == 1:
            text = "a fraction above 0, at most 1" if low[0] == ">" else "a fraction from 0 to 1"
        else:
            text = "a whole number" if kind is int else "a number"
            if low is not None and high is not None and low[0] == ">=":
                text += f" from {low[1]:g} to {high:g}"
            elif low is not None:
                text += f" {low[0]} {low[1]:g}" + (f", at most {high:g}" if high is not None else "")
        if extra.get("zero"):
            text += f" (0: {extra['zero']})"
        return text + (" (or empty)" if optional else "")

    @classmethod
    def refusal_text(cls, exc: ValidationError) -> str:
        """One line per refusal in `exc`, each naming its setting and what it allows."""
        lines: list[str] = []
        for err in exc.errors():
            if not err["loc"]:  # a rule over several settings: its message says it all
                lines.append(str(err.get("ctx", {}).get("error", err["msg"])))
                continue
            name = str(err["loc"][0])
            if name not in cls.model_fields:
                lines.append(f"{cls.subject(name)} is not a setting.")
                continue
            if name in cls.hidden:
                shown = "(hidden)"
            elif err["type"] == "finite_number":
                shown = repr(float(err["input"]))
            else:
                shown = repr(err["input"])
            if err["type"] == "finite_number":
                rule = "a finite number"
            elif err["type"] == "value_error":
                rule = str(err["ctx"]["error"])
            else:
                rule = cls.allowed(name)
            lines.append(f"{cls.subject(name)} = {shown} is invalid: it must be {rule}.")
        return "\n".join(dict.fromkeys(lines))
