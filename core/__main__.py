"""CLI: python -m core <command>. Exit codes: 0 ok, 1 operation failed, 2 bad arguments.

Each command group lives in its own module under core/cli/ and exposes
`register(subparsers)`; the parser it adds sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.config import SettingsError
from core.errors import AppError, classify
from core.runtime import settle_heap

# command groups, in the order --help lists them
COMMAND_MODULES = [
    "core.cli.db",
    "core.cli.batch",
    "core.cli.worker",
    "core.cli.conversations",
    "core.cli.recovery",
    "core.cli.sandbox",
    "core.cli.generate",
    "core.cli.errors",
    "core.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="LoRA Conversation Studio command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    settle_heap()  # the command modules are imported: what is alive now lives as long as the process
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): not a failure of the operation
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, so flushing cannot fail again
        return 0
    except Exception as exc:  # noqa: BLE001 - the CLI boundary classifies every failure
        err = exc if isinstance(exc, AppError) else classify(exc)
        print(f"error: {err.user_message}\n  ({err.code}: {err.message})", file=sys.stderr)
        return 2 if err.error_type == "validation" else 1
    finally:
        _flush_error_log()


def _flush_error_log() -> None:
    try:
        from core.errorlog import shutdown
    except ImportError:
        return
    shutdown()


if __name__ == "__main__":
    sys.exit(main())
