"""`python -m core demo seed-errors` and `errors export|stats` on both engines."""

from __future__ import annotations

import csv
import json

import pytest
from cli_runner import CliRun
from cli_runner import run_cli as run_in_process
from sqlalchemy import func, select

from core.__main__ import main
from core.store.schema import error_logs


def run_cli(*args: str) -> CliRun:
    # the environment carries DATABASE_URL and the test's isolated settings
    return run_in_process(args)


def row_count(engine, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(error_logs).where(*where)).scalar_one()


def test_seed_then_export_writes_exactly_the_critical_rows(engine, tmp_path):
    """Seeding 10,000 rows then exporting --severity critical writes exactly the critical rows."""
    seeded = run_cli("demo", "seed-errors", "--count", "10000")
    assert seeded.returncode == 0, seeded.stderr
    assert "10000 rows" in seeded.stdout and "rows/s" in seeded.stdout
    assert row_count(engine) == 10_000

    out = tmp_path / "e.csv"
    exported = run_cli("errors", "export", "--out", str(out), "--severity", "critical")
    assert exported.returncode == 0, exported.stderr
    critical = row_count(engine, error_logs.c.severity == "critical")
    assert critical > 0
    with out.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == critical
    assert f"{critical} rows" in exported.stdout
    with engine.connect() as conn:
        expected = set(conn.execute(select(error_logs.c.error_id).where(error_logs.c.severity == "critical")).scalars())
    assert {r["error_id"] for r in records} == expected
    assert {r["severity"] for r in records} == {"critical"}

    stats = run_cli("errors", "stats", "--json", "--since", "31d")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["by_severity"]["critical"] == critical


BAD_EXPORTS = [
    ["--since", "yesterday"],
    ["--severity", "fatal"],
    ["--type", "weird"],
    ["--since", "2026-11-29", "--until", "2026-11-01"],
    ["--search", "x" * 5000],
]


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse exits on bad arguments
        return int(exc.code or 0)


def test_bad_arguments_exit_2_write_no_file_and_touch_no_rows(engine, tmp_path, capsys):
    """A bad time, severity, type, range, search or count exits 2 and changes nothing."""
    from core.errorlog.seed import seed_errors

    seed_errors(engine, 100, seed=5)
    out = tmp_path / "bad.csv"
    for bad in BAD_EXPORTS:
        assert exit_code(["errors", "export", "--out", str(out), *bad]) == 2, bad
        assert capsys.readouterr().err.strip(), bad
        assert not out.exists() and not list(tmp_path.glob("*.part")), bad
    for count in ("0", "10000000000", "many"):
        assert exit_code(["demo", "seed-errors", "--count", count]) == 2, count
        assert "count" in capsys.readouterr().err
    assert row_count(engine) == 100
    # and the same through a real process: the exit status a shell sees
    real = run_cli("errors", "export", "--out", str(out), "--since", "not-a-date")
    assert real.returncode == 2 and "--since" in real.stderr and not out.exists()


@pytest.mark.parametrize("command", [
    ["errors", "export"], ["errors", "stats"], ["errors", "retention"], ["demo", "seed-errors"],
])
def test_every_command_has_help(command, capsys):
    """--help on each command prints its usage and exits 0."""
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: python -m core " + " ".join(command) in capsys.readouterr().out


def test_retention_command_previews_then_applies(engine, tmp_path):
    """errors retention counts without removing; with --apply it removes the same rows."""
    from datetime import UTC, datetime, timedelta

    from core.errorlog.seed import seed_errors

    seed_errors(engine, 500, days=60, seed=3)
    old = row_count(engine, error_logs.c.severity.not_in(("error", "critical")),
                    error_logs.c.created_at < datetime.now(UTC) - timedelta(days=30))
    assert old > 0
    preview = run_cli("errors", "retention")
    assert preview.returncode == 0 and f"would remove {old} rows" in preview.stdout
    assert row_count(engine) == 500
    applied = run_cli("errors", "retention", "--apply")
    assert applied.returncode == 0 and f"removed {old} rows" in applied.stdout
    assert row_count(engine) == 500 - old
