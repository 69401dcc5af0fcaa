"""`python -m core db migrate`."""

from __future__ import annotations

import argparse

from core.cli import add_action, add_group
from core.store import get_engine, migrate


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = add_group(sub, "db", help="database maintenance")
    p = add_action(db, "migrate", _migrate, help="create or upgrade the schema (idempotent)")
    p.set_defaults(store="none")  # migrates itself, forced


def _migrate(_args: argparse.Namespace) -> int:
    engine = get_engine()
    migrate(engine, force=True)
    print(f"schema is current on {engine.url.render_as_string(hide_password=True)}")
    return 0
