"""Command groups of `python -m core`; each module exposes register(subparsers)."""

from __future__ import annotations

import sys

from core.redact import redact_text

__all__ = ["print_error"]


def print_error(text: str) -> None:
    """Write an error line to stderr, redacted: upstream messages can carry keys and passwords."""
    print(redact_text(text), file=sys.stderr)
