"""`python -m core db migrate`."""

from __future__ import annotations

import argparse

from core.store import get_engine, migrate


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    p = db_sub.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    p.set_defaults(func=_migrate, store="none")  # migrates itself, forced


def _migrate(_args: argparse.Namespace) -> int:
    engine = get_engine()
    migrate(engine, force=True)
    print(f"schema is current on {engine.url.render_as_string(hide_password=True)}")
    return 0
