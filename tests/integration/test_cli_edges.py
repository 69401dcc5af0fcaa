"""Edges of `python -m core` as a shell sees them, on SQLite and Postgres: exit 2 with a clear message, no traceback.

Each case is one command, run in the test's process. Bounds come from core.config (the messages quote them), so a
value too large for a database column is refused before the database is touched.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cli_runner import run_cli
from sqlalchemy import func, select

from core.store.schema import batch_items, batch_jobs, error_logs, utcnow

HUGE = str(10**20)
TRILLION = str(10**12)
LONG_NAME = "n" * 100_000

# (case id, argv, extra environment, a fragment the refusal must contain)
EDGES: list[tuple[str, list[str], dict[str, str], str]] = [
    ("batch turns 0", ["batch", "create", "--template", "customer_support", "--count", "2", "--turns", "0"], {},
     "argument --turns: must be an even number from 2 to 40; got 0"),
    ("generate turns 0", ["generate", "--template", "customer_support", "--turns", "0"], {},
     "argument --turns: must be an even number from 2 to 40; got 0"),
    ("list limit -5", ["batch", "list", "--limit", "-5"], {},
     "argument --limit: must be a whole number from 1 to 1,000; got -5"),
    ("list limit 10**20", ["batch", "list", "--limit", HUGE], {},
     "argument --limit: must be a whole number from 1 to 1,000"),
    ("batch concurrency 10**12", ["batch", "create", "--template", "customer_support", "--count", "2",
                                  "--concurrency", TRILLION], {},
     "argument --concurrency: must be a whole number from 1 to 64"),
    ("worker concurrency 10**12", ["worker", "--once", "--concurrency", TRILLION], {},
     "argument --concurrency: must be a whole number from 1 to 64"),
    ("batch count 10**20", ["batch", "create", "--template", "customer_support", "--count", HUGE], {},
     "argument --count: must be a whole number from 1 to 100,000"),
    ("name of 100,000 characters", ["batch", "create", "--template", "customer_support", "--count", "2",
                                    "--name", LONG_NAME], {},
     "argument --name: is 100,000 characters long; at most 200 are allowed"),
    ("since 99999999999d", ["errors", "export", "--out", "{tmp}/e.csv", "--since", "99999999999d"], {},
     "argument --since: '99999999999d' reaches back more than 36,500 days"),
    ("stats since 99999999999d", ["errors", "stats", "--since", "99999999999d"], {},
     "reaches back more than 36,500 days"),
    ("seed days 10**20", ["demo", "seed-errors", "--count", "5", "--days", HUGE], {},
     "argument --days: must be a whole number from 1 to 36,500"),
    ("status bogus", ["batch", "list", "--status", "bogus"], {},
     "argument --status: there is no batch state 'bogus'; choose one of: queued, running"),
    ("export template nope", ["conversations", "export", "--out", "{tmp}/c.jsonl", "--template", "nope"], {},
     "argument --template: there is no template 'nope'; choose one of: customer_support"),
    ("create template nope", ["batch", "create", "--template", "nope", "--count", "2"], {},
     "there is no template 'nope'"),
    ("csv with a column twice", ["batch", "create", "--template", "customer_support", "--csv", "{tmp}/dup.csv"], {},
     "The header row names topic more than once"),
    ("lease inf", ["batch", "list"], {"STUDIO_LEASE_DURATION_S": "inf"},
     "Setting STUDIO_LEASE_DURATION_S = inf is invalid: it must be a finite number."),
    ("lease nan", ["batch", "list"], {"STUDIO_LEASE_DURATION_S": "NaN"},
     "Setting STUDIO_LEASE_DURATION_S = nan is invalid: it must be a finite number."),
    ("heartbeat not shorter than the lease", ["worker", "--once"],
     {"STUDIO_LEASE_DURATION_S": "10", "STUDIO_HEARTBEAT_INTERVAL_S": "10"},
     "STUDIO_HEARTBEAT_INTERVAL_S (10 s) must be shorter than STUDIO_LEASE_DURATION_S (10 s)"),
    ("empty user", ["batch", "list"], {"STUDIO_USER": ""},
     "Setting STUDIO_USER = '' is invalid: it must be a name, not empty."),
    ("api key with a trailing newline", ["generate", "--template", "customer_support"],
     {"ANTHROPIC_API_KEY": "sk-ant-api03-edgecase\n"},
     "Setting ANTHROPIC_API_KEY contains a space, a line break or another invisible character"),
    ("sqlite file in a missing folder", ["batch", "list"], {"DATABASE_URL": "sqlite:///{tmp}/missing/dir/s.db"},
     "names a SQLite file in a folder that does not exist"),
]


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(("argv", "extra", "fragment"), [pytest.param(a, e, f, id=i) for i, a, e, f in EDGES])
def test_an_edge_value_is_refused_with_exit_2_and_a_clear_message(argv, extra, fragment, engine, tmp_path):
    """Each edge exits 2 with a message naming the bound, no traceback, and writes no batch and no error row."""
    (tmp_path / "dup.csv").write_text("persona,emotion,topic,topic\na,b,c,d\n", encoding="utf-8")
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in extra.items()}
    result = run_cli([a.replace("{tmp}", str(tmp_path)) for a in argv], env)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert fragment in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "out of range" not in result.stderr
    assert len(result.stderr) < 2_000  # a 100,000-character value is not echoed back
    assert "sk-ant-api03-edgecase" not in result.stderr
    assert _count(engine, batch_jobs) == 0 and _count(engine, error_logs) == 0
    assert not (tmp_path / "missing").exists()


def test_a_failing_command_records_its_error_before_the_process_exits(engine, tmp_path):
    """A command that fails (exit 1) prints an error id, and that row is in the error log when the process has exited."""
    result = run_cli(["conversations", "export", "--out", str(tmp_path / "no-such-folder" / "c.jsonl")])
    assert result.returncode == 1, result.stderr
    assert "The error has been recorded" in result.stderr
    error_id = result.stderr.rsplit("error id ", 1)[1].split()[0]
    with engine.connect() as conn:
        row = conn.execute(select(error_logs.c.component, error_logs.c.error_code)
                           .where(error_logs.c.error_id == error_id)).one()
    assert tuple(row) == ("cli.conversations.export", "file_error")


def test_a_failure_while_the_database_is_down_is_spooled_not_lost(tmp_path):
    """With Postgres unreachable, the failing command's error row waits in the spool file under its printed id."""
    data = tmp_path / "data"
    env = {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none", "STUDIO_DATA_DIR": str(data)}
    result = run_cli(["batch", "list"], env)
    assert result.returncode == 1, result.stderr
    error_id = result.stderr.rsplit("error id ", 1)[1].split()[0]
    spooled = "".join(p.read_text(encoding="utf-8") for p in Path(data).glob("errorlog-spool*.jsonl"))
    assert error_id in spooled and "cli.batch.list" in spooled


def test_worker_once_names_a_batch_a_killed_workers_lease_still_holds(engine):
    """`worker --once` with nothing it may take says which batch another lease holds and for how long, not nothing."""
    created = run_cli(["batch", "create", "--template", "tutoring", "--count", "2"])
    assert created.returncode == 0, created.stderr
    with engine.begin() as conn:
        batch_id = conn.execute(select(batch_jobs.c.id)).scalar_one()
        conn.execute(batch_jobs.update().values(status="running", lease_owner="killed-host:4242:abc123",
                                                lease_expires_at=utcnow() + timedelta(minutes=10)))
        conn.execute(batch_items.update().values(status="running", claimed_by="killed-host:4242:abc123",
                                                 claimed_at=utcnow()))
    result = run_cli(["worker", "--once"])
    assert result.returncode == 0, result.stderr
    note = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(note) == 1, result.stderr
    # ten minutes, less the worker's start-up (seconds, more on a loaded machine)
    assert re.match(rf"note: batch {batch_id[:8]} is held by another worker's lease for (9 min( \d+ s)?|10 min) "
                    r"more\.", note[0]), note[0]
    assert "run the worker again after that and it takes the batch over" in note[0]
    with engine.begin() as conn:  # nothing taken from the lease holder
        assert conn.execute(select(batch_jobs.c.lease_owner)).scalar_one() == "killed-host:4242:abc123"

    with engine.begin() as conn:  # once the lease has run out, the next --once takes the batch and says nothing
        conn.execute(batch_jobs.update().values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert "note: " not in run_cli(["worker", "--once"]).stderr


def test_batch_list_gives_each_batch_its_time_to_the_second_in_utc(engine):
    """The human listing reads "2026-12-02 06:00:11 UTC", not an ISO string with microseconds; --json keeps ISO."""
    assert run_cli(["batch", "create", "--template", "tutoring", "--count", "2"]).returncode == 0
    [line] = run_cli(["batch", "list"]).stdout.splitlines()
    assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  ", line), line
    assert not re.search(r"T\d\d:\d\d:\d\d\.\d+", line), line
    [row] = json.loads(run_cli(["batch", "list", "--json"]).stdout)
    assert "T" in row["created_at"]
