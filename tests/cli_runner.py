"""Run `python -m core ...` inside the test process: its exit code, stdout and stderr, with no process start-up.

One test (test_generate_cli) still starts the real entry point as a process.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import pytest

import core.__main__ as entry
from core import config
from core.config import reload_settings
from core.store import reset_engine

__all__ = ["CliRun", "run_cli"]


@dataclass(frozen=True)
class CliRun:
    """What a shell would see of one command."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> CliRun:
    """`python -m core *args` with `env` added to this test's environment, settings read afresh."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        # the heap freeze is once per CLI process; the test process is not one
        mp.setattr(entry, "settle_heap", lambda: False)
        # settings unread, as in a new process: main() reads them and refuses a bad one itself
        mp.setattr(config, "_current", None)
        reset_engine()
        try:
            code = entry.main(list(args))
        except SystemExit as exc:  # argparse refuses with sys.exit(2)
            code = exc.code if isinstance(exc.code, int) else 1
    reload_settings()
    reset_engine()
    return CliRun(code, out.getvalue(), err.getvalue())
