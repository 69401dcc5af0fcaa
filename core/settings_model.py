"""The kind of model both the app's settings and the sandbox's config are: typed, bounded, plain-spoken.

A field declares its type, a lower and an upper bound (``ge``/``gt`` and ``le``) and a
plain-language ``title``; inf and NaN are never a value. Values may arrive as text (environment variables, a form, a
CLI option, JSON), and are read the same way in both models: a flag from yes/no/on/off/true/
false/1/0 (empty: off), a list of whole numbers from "429, 503", an optional value from ""
/ none / null. A refusal names the setting and says what is allowed, in words, from the same
declaration the UI reads its labels and bounds from.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Literal, NamedTuple, Self, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

__all__ = ["CheckedModel", "Refusal", "RuleBroken", "described", "fraction", "non_negative", "positive", "whole"]

_NO_VALUE = ("", "none", "null")
# set while `refusals` validates: a refusal then stays a ValidationError, whose parts it words for a form
_KEEP_PARTS: ContextVar[bool] = ContextVar("keep_refusal_parts", default=False)


def positive(default: Any, title: str, *, most: float) -> Any:
    """A number above 0, at most `most`."""
    return Field(default, gt=0, le=most, title=title)


def non_negative(default: Any, title: str, *, most: float, zero: str = "") -> Any:
    """A number from 0 to `most`; `zero` says what 0 means, when it means something ("off", "no limit")."""
    return Field(default, ge=0, le=most, title=title, json_schema_extra={"zero": zero} if zero else None)


def whole(default: int, title: str, *, least: int, most: int) -> Any:
    """A whole number from `least` to `most`."""
    return Field(default, ge=least, le=most, title=title)


def described(default: Any, title: str, allowed: str) -> Any:
    """A value whose rule a validator checks; `allowed` says it in words, for messages and the UI."""
    return Field(default, title=title, json_schema_extra={"allowed": allowed})


def fraction(default: float, title: str, *, above_zero: bool = False) -> Any:
    """A share from 0 (or just above it) to 1."""
    return Field(default, gt=0, le=1, title=title) if above_zero else Field(default, ge=0, le=1, title=title)


def _number(x: float) -> str:
    """A bound as a person reads it: 3,600 and 0.25, never 3.6e+03."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


class RuleBroken(ValueError):
    """A rule over several settings, broken. `fields[0]` is the setting to change; the others are involved.

    `rest(name)` is the message after the first setting's name, naming any other setting through `name`,
    so the same rule reads with variable names at start and with labels on the Settings page.
    """

    def __init__(self, fields: tuple[str, ...], rest: Callable[[Callable[[str], str]], str]) -> None:
        super().__init__(f"{fields[0]} {rest(str)}")
        self.fields = fields
        self.rest = rest


class Refusal(NamedTuple):
    """One refused setting (or rule) as the Settings page shows it: the fields involved and a sentence."""

    fields: tuple[str, ...]
    text: str


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
    def named(cls, name: str) -> str:
        """How a message at start names setting `name` (its variable, for the app's settings)."""
        return name

    @classmethod
    def subject(cls, name: str) -> str:
        """How a message at start begins when it is about setting `name`."""
        return f"Setting {cls.named(name)}"

    @classmethod
    def label(cls, name: str) -> str:
        """Setting `name` in plain words, as a form labels it."""
        return cls.model_fields[name].title or name

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
            if _KEEP_PARTS.get():
                raise
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
        if kind is int and low == (">", 0):
            low = (">=", 1)  # a whole number above 0 is one from 1
        if kind is float and low is not None and low[1] == 0 and high == 1:
            text = "a fraction above 0, at most 1" if low[0] == ">" else "a fraction from 0 to 1"
        else:
            text = "a whole number" if kind is int else "a number"
            if low is not None and high is not None and low[0] == ">=":
                text += f" from {_number(low[1])} to {_number(high)}"
            elif low is not None:
                text += f" {'above' if low[0] == '>' else '>='} {_number(low[1])}"
                text += f", at most {_number(high)}" if high is not None else ""
            elif high is not None:
                text += f" at most {_number(high)}"
        if extra.get("zero"):
            text += f" (0: {extra['zero']})"
        return text + (" (or empty)" if optional else "")

    @classmethod
    def _faults(cls, exc: ValidationError) -> list[tuple[str | None, RuleBroken | None, str]]:
        """(setting, broken rule, what it must be) for each refusal in `exc`; setting None for a rule without one."""
        faults: list[tuple[str | None, RuleBroken | None, str]] = []
        for err in exc.errors():
            cause = err.get("ctx", {}).get("error")
            if not err["loc"]:  # a rule over several settings
                faults.append((None, cause if isinstance(cause, RuleBroken) else None, str(cause or err["msg"])))
                continue
            name = str(err["loc"][0])
            if name not in cls.model_fields:
                faults.append((name, None, ""))
            elif err["type"] == "finite_number":
                faults.append((name, None, "a finite number"))
            elif err["type"] == "value_error":
                faults.append((name, None, str(cause)))
            else:
                faults.append((name, None, cls.allowed(name)))
        return faults

    @classmethod
    def refusal_text(cls, exc: ValidationError) -> str:
        """One line per refusal in `exc`, each naming its setting and what it allows."""
        lines: list[str] = []
        for err, (name, rule, must) in zip(exc.errors(), cls._faults(exc), strict=True):
            if rule is not None:
                lines.append(f"{cls.subject(rule.fields[0])} {rule.rest(cls.named)}")
            elif name is None:
                lines.append(must)
            elif name not in cls.model_fields:
                lines.append(f"{cls.subject(name)} is not a setting.")
            else:
                if name in cls.hidden:
                    shown = "(hidden)"
                elif err["type"] == "finite_number":
                    shown = repr(float(err["input"]))
                else:
                    shown = repr(err["input"])
                lines.append(f"{cls.subject(name)} = {shown} is invalid: it must be {must}.")
        return "\n".join(dict.fromkeys(lines))

    @classmethod
    def refusals(cls, values: Mapping[str, Any]) -> list[Refusal]:
        """What a form shows for `values`: each setting at fault, named by its label, and what it must be.

        Rules over several settings are checked once every setting is valid on its own.
        """
        token = _KEEP_PARTS.set(True)
        try:
            cls(**values)
        except ValidationError as exc:
            found: list[Refusal] = []
            for name, rule, must in cls._faults(exc):
                if rule is not None:
                    found.append(Refusal(rule.fields, f"{cls.label(rule.fields[0])} {rule.rest(cls.label)}"))
                elif name is None:
                    found.append(Refusal((), must))
                elif name in cls.model_fields:
                    found.append(Refusal((name,), f"{cls.label(name)} must be {must}."))
                else:
                    found.append(Refusal((name,), f"{name} is not a setting."))
            return found
        finally:
            _KEEP_PARTS.reset(token)
        return []
