"""Command groups of `python -m core`; each module exposes register(subparsers)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from core.redact import redact_text

__all__ = ["add_action", "add_group", "plain_fields", "print_error", "print_rows"]

_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def print_error(text: str) -> None:
    """Write an error line to stderr, redacted: upstream messages can carry keys and passwords."""
    print(redact_text(text), file=sys.stderr)


def add_group(sub: _Subparsers, name: str, help: str) -> _Subparsers:
    """A command of several actions, `python -m core NAME ACTION`; the action is kept in args.NAME_command."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def add_action(group: _Subparsers, name: str, func: Callable[[argparse.Namespace], int], help: str,
               description: str | None = None) -> argparse.ArgumentParser:
    """The parser of one action, which runs `func(args)`."""
    parser = group.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func)
    return parser



def plain_fields(row: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The fields `names` of a row, times as ISO text: ready for json.dumps and for printing."""
    return {k: row[k].isoformat() if hasattr(row[k], "isoformat") else row[k] for k in names}


def print_rows(rows: list[dict[str, Any]], *, as_json: bool, line: Callable[[dict[str, Any]], str],
               footer: str | None) -> int:
    """A listing: JSON (a list of objects) or one `line` a row, with `footer` on stderr (None: none); exit 0."""
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    for row in rows:
        print(line(row))
    if footer:
        print(footer, file=sys.stderr)
    return 0
