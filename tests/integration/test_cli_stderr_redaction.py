"""The CLI's error lines on stderr pass the redactor."""

from __future__ import annotations

from cli_runner import CliRun, run_cli
from redaction_cases import ANTHROPIC_KEY

from core.redact import REDACTED


def _run(*args: str) -> CliRun:
    return run_cli(args)


def test_a_failing_command_prints_its_error_without_the_secret_it_echoes():
    """An id or a template name holding a key is echoed in the error as [REDACTED], exit code unchanged."""
    status = _run("batch", "status", ANTHROPIC_KEY)
    assert status.returncode == 1, status.stderr  # not found: the operation failed
    assert ANTHROPIC_KEY not in status.stderr and ANTHROPIC_KEY[-16:] not in status.stderr
    assert f"There is no batch whose id starts with '{REDACTED}'" in status.stderr
    create = _run("batch", "create", "--template", "password=hunter2xy", "--count", "1")
    assert create.returncode == 2, create.stderr
    assert "hunter2xy" not in create.stderr and f"password={REDACTED}" in create.stderr
