"""Argument types shared by the commands: every bound is a field of core.config, read when parsing.

A value outside its bound is an argparse error (exit 2, the option named, no traceback), so a
number too large for a database column never reaches the database. The services check the
same settings, so the UI refuses what the CLI refuses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from core.config import get_settings

__all__ = ["bounded_text", "dollars", "one_of", "template_name", "turns", "variable_value", "whole_number"]


def _int(text: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None


def whole_number(low: int, high_setting: str) -> Callable[[str], int]:
    """A whole number from `low` to the setting named `high_setting`."""

    def parse(text: str) -> int:
        value = _int(text)
        high = int(getattr(get_settings(), high_setting))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}; got {_short(value)}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse


def dollars(high_setting: str) -> Callable[[str], float]:
    """A finite amount of dollars above 0, at most the setting named `high_setting`."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip().removeprefix("$").replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an amount of dollars") from None
        high = float(getattr(get_settings(), high_setting))
        if not 0 < value <= high:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"must be an amount above 0 and at most {high:,.0f}; got {text[:24]}")
        return value

    parse.__name__ = "dollars"
    return parse


def turns(text: str) -> int:
    """Messages in a conversation: even, from generation_min_turns to generation_max_turns."""
    value = _int(text)
    s = get_settings()
    if not s.generation_min_turns <= value <= s.generation_max_turns or value % 2:
        raise argparse.ArgumentTypeError(
            f"must be an even number from {s.generation_min_turns} to {s.generation_max_turns}; got {_short(value)}")
    return value


def bounded_text(max_setting: str) -> Callable[[str], str]:
    """Text of at most the setting named `max_setting` characters."""

    def parse(text: str) -> str:
        limit = int(getattr(get_settings(), max_setting))
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"is {len(text):,} characters long; at most {limit:,} are allowed")
        return text

    parse.__name__ = "text"
    return parse


def one_of(choices: Callable[[], Sequence[str]], what: str) -> Callable[[str], str]:
    """One of `choices()` (read when parsing), with the choices named in the refusal."""

    def parse(text: str) -> str:
        allowed = list(choices())
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"there is no {what} {text[:60]!r}; choose one of: {', '.join(allowed)}")
        return text

    parse.__name__ = what
    return parse


def template_name(text: str) -> str:
    """The name of a stored template (archived ones too: exports and history name them).

    Checked against the store when it answers; when it does not, the name is taken as given and the
    command fails on the store itself (exit 1), not as a bad argument.
    """
    from core.resilience import is_store_unavailable
    from core.templates.store import known_names

    try:
        allowed = known_names()
    except Exception as exc:
        if is_store_unavailable(exc):
            return text
        raise
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"there is no template {text[:60]!r}; choose one of: {', '.join(allowed)}")
    return text


def variable_value(text: str) -> tuple[str, str]:
    """NAME=VALUE: a custom variable of the template and its value (checked against the template by the command)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not NAME=VALUE")
    return name.strip(), value


def _short(value: int) -> str:
    digits = str(value)
    return f"{value:,}" if len(digits) <= 24 else f"a number of {len(digits)} digits"
