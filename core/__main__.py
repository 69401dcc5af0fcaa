"""CLI: python -m core <command>. Exit codes: 0 ok, 1 operation failed, 2 bad arguments.

Each command group lives in its own module under core/cli/ and exposes
`register(subparsers)`; the parser it adds sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from core.auth import ANONYMOUS, Actor, acting_as
from core.cli import print_error
from core.config import SettingsError, auth_secrets, get_settings
from core.errorlog import flush, record, shutdown
from core.errors import AppError, ErrorType, NotFoundError, classify
from core.resilience import is_store_unavailable
from core.runtime import settle_heap
from core.store import get_engine, migrate

# command groups, in the order --help lists them
COMMAND_MODULES = [
    "core.cli.db",
    "core.cli.batch",
    "core.cli.worker",
    "core.cli.conversations",
    "core.cli.review",
    "core.cli.drafts",
    "core.cli.recovery",
    "core.cli.sandbox",
    "core.cli.generate",
    "core.cli.templates",
    "core.cli.errors",
    "core.cli.demo",
    "core.cli.users",
]


class _Parser(argparse.ArgumentParser):
    """argparse whose refusals ("invalid choice: '<what was typed>'") go out through print_error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print_error(f"{self.prog}: error: {message}")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    # subparsers are made of the same class, so every command's refusals are redacted too
    parser = _Parser(prog="python -m core", description="LoRA Conversation Studio command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        get_settings()  # a bad setting stops every command at start, before anything is touched
    except SettingsError as exc:
        print_error(_error_text(str(exc)))
        if _asks_for_help(sys.argv[1:] if argv is None else argv):
            build_parser().parse_args(argv)  # the help needs no settings: it prints, then exits 0
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    settle_heap()  # the command modules are imported: what is alive now lives as long as the process
    try:
        _migrate_first(args)
        with acting_as(_cli_actor(args)):
            return int(args.func(args) or 0)
    except SettingsError as exc:
        print_error(_error_text(str(exc)))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): not a failure of the operation
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, so flushing cannot fail again
        return 0
    except Exception as exc:  # noqa: BLE001 - the CLI boundary classifies every failure
        err = exc if isinstance(exc, AppError) else classify(exc)
        if isinstance(err, NotFoundError):
            print_error(_error_text(err.user_message))
            return 1  # the same answer whether it does not exist or is someone else's
        if err.error_type == ErrorType.VALIDATION:
            print_error(_error_text(err.user_message, f"{err.code}: {err.message}"))
            return 2  # bad input is refused, not a failure of the app: nothing to record
        print_error(_error_text(err.user_message, f"{err.code}: {err.message}", _record_failure(err, args)))
        return 1
    finally:
        _flush_error_log()


def _asks_for_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv)


def _migrate_first(args: argparse.Namespace) -> None:
    """Bring the configured database to the newest schema before the command can write to it.

    The error log's writer does not migrate, so every entry point does, once, at its start.
    A command sets `store`: "required" (the default) fails here when the database is down;
    "log" only records errors, so it runs anyway and its rows wait in the spool file;
    "none" never opens the database (or, like `db migrate`, migrates on its own terms).
    """
    store = getattr(args, "store", "required")
    if store == "none":
        return
    try:
        migrate(get_engine())
    except Exception as exc:
        if store == "required" or not is_store_unavailable(exc):
            raise


def _cli_actor(args: argparse.Namespace) -> Actor:
    """Who the command runs as: the user STUDIO_USER names (local mode: created as an analyst if new).

    With sign-in configured the name must be an existing user's email or name: the CLI does not
    make people the identity provider has not. A command that never opens the store acts as nobody.
    """
    if getattr(args, "store", "required") == "none":
        return ANONYMOUS
    from core.auth.users import find_existing, local_actor

    engine = get_engine()
    if not auth_secrets():
        try:
            return local_actor(engine)
        except Exception as exc:
            if getattr(args, "store", "required") == "log" and is_store_unavailable(exc):
                return ANONYMOUS  # it runs with the store down; its rows wait in the spool, nobody's
            raise
    name = get_settings().user_name
    found = find_existing(engine, name)
    if found is None:
        raise SettingsError(f"Setting STUDIO_USER = {name!r} names no user; with sign-in configured it must be "
                            "the email or name of someone who has signed in or been added (users add).")
    return found


def _error_text(message: str, detail: str | None = None, note: str | None = None) -> str:
    lines = [f"error: {message}"]
    if detail:
        lines.append(f"  ({detail})")
    if note:
        lines.append(f"  {note}")
    return "\n".join(lines)


def _record_failure(err: AppError, args: argparse.Namespace) -> str:
    """Record the failure and wait until it is stored (or spooled); say which."""
    action = next((v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)), None)
    component = f"cli.{args.command}" + (f".{action}" if action else "")
    error_id = record(err, component=component)
    if error_id is None:
        return "warning: the error could not be recorded in the error log."
    if flush(get_settings().log_shutdown_timeout_s).lost:
        return f"warning: the error (id {error_id}) could not be written to the error log or its spool file."
    return f"error id {error_id}"


def _flush_error_log() -> None:
    shutdown()


if __name__ == "__main__":
    sys.exit(main())
