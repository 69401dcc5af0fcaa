"""Error rows by owner, on both engines: an analyst sees and acts on their own and the system's, an admin on all."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cli_runner import run_cli
from people import person
from sqlalchemy import event, select

from core.auth import Actor, Role, acting_as
from core.auth.audit import AuditAction
from core.errorlog import (
    ErrorFilter,
    apply_retention,
    error_groups,
    error_stats,
    get_error,
    retention_preview,
    search_errors,
    set_resolved,
)
from core.errorlog.alerts import new_critical
from core.errorlog.export import export_csv, iter_csv_chunks
from core.errorlog.fingerprint import fingerprint
from core.errors import NotFoundError
from core.store.schema import audit_events, error_logs
from core.store.tx import write_tx
from core.ui.downloads import capped

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)  # in the past
SHARED_FP = "f" * 32  # a kind of error that A, B and the system all ran into


def _row(owner: str | None, n: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "error_id": uuid.uuid4().hex, "created_at": NOW - timedelta(hours=n % 30, minutes=n % 7),
        "error_type": "api", "error_code": "rate_limited", "severity": "warn", "message": f"boom {n}",
        "component": "claude_client", "fingerprint": SHARED_FP, "user_id": owner, "is_recoverable": True,
        "recovered": False, "resolved": False,
    }
    row.update(overrides)
    return row


@pytest.fixture
def crowd(engine) -> dict[str, Any]:
    """Analysts A and B and an admin; 6 rows of A's, 3 of B's and 4 of the system's, over the last 30 hours."""
    a, b = person(engine, "a@example.com"), person(engine, "b@example.com")
    admin = person(engine, "boss@example.com", Role.ADMIN)
    rows = ([_row(a.user_id, i, message=f"a's secret plan {i}") for i in range(6)]
            + [_row(b.user_id, 10 + i) for i in range(3)]
            + [_row(None, 20 + i, error_code="db_locked", error_type="database",
                    fingerprint=fingerprint("database", "db_locked", "store", "x")) for i in range(3)]
            + [_row(None, 29, severity="critical")])
    rows.append(_row(a.user_id, 5, severity="critical", fingerprint="a" * 32, message="a's critical"))
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), rows)
    ids: dict[str | None, set[str]] = {}
    for r in rows:
        ids.setdefault(r["user_id"], set()).add(r["error_id"])
    return {"a": a, "b": b, "admin": admin, "ids": ids, "rows": rows}


def _seen(engine, actor: Actor, flt: ErrorFilter | None = None) -> set[str]:
    with acting_as(actor):
        page = search_errors(engine, flt or ErrorFilter(), page_size=500)
    assert page.total == len(page.rows)
    return {r["error_id"] for r in page.rows}


def test_a_text_search_reads_the_search_view_on_postgres_and_finds_the_same_rows(engine, crowd):
    """A person's text search (page, groups, stats, export) reads studio_private's view on Postgres, error_logs
    elsewhere, and finds what the unsearched list holds with the text in it."""
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", note)
    try:
        for who in (crowd["a"], crowd["b"], crowd["admin"]):
            with acting_as(who):
                every = search_errors(engine, ErrorFilter(), page_size=500).rows
                statements.clear()
                found = search_errors(engine, ErrorFilter(search="BOOM"), page_size=500)
                groups = error_groups(engine, ErrorFilter(search="boom"))
                stats = error_stats(engine, ErrorFilter(search="boom"), since=NOW - timedelta(days=2),
                                    until=NOW + timedelta(hours=1))
                out = io.StringIO()
                exported = export_csv(engine, ErrorFilter(search="boom"), out)
            expected = {r["error_id"] for r in every if "boom" in r["message"]}
            assert {r["error_id"] for r in found.rows} == expected and found.total == len(expected) > 0
            assert sum(g["count"] for g in groups) == stats["total"] == exported == len(expected)
            assert len(list(csv.reader(io.StringIO(out.getvalue())))) == len(expected) + 1
            # the reads of the rows (not of the code and component names, nor a group's sample row)
            reads = [q for q in statements if q.startswith("SELECT") and "error_log" in q and "error_log_rollup" not in q
                     and "fingerprint = " not in q and not q.startswith("SELECT anon_1.component")]
            via_view = [q for q in reads if "studio_private.error_log_search" in q]
            assert via_view == (reads if engine.dialect.name == "postgresql" else []) and reads
    finally:
        event.remove(engine, "before_cursor_execute", note)


ERROR_ACTIONS = (AuditAction.ERROR_RESOLVE, AuditAction.ERROR_UNRESOLVE, AuditAction.ERROR_RESOLVE_ALL,
                 AuditAction.EXPORT_ERRORS_CSV)


def _audits(engine, *actions: AuditAction) -> list[Any]:
    """The audit rows of `actions` (default: every error-log action; sign-ins are audited too), oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(audit_events).where(
            audit_events.c.action.in_([a.value for a in actions or ERROR_ACTIONS])).order_by(audit_events.c.id))
            .mappings())


def test_an_analyst_sees_their_rows_and_the_systems_never_anothers(engine, crowd):
    """B's list holds B's and the system's rows, A's its own and the system's, the admin's every row."""
    ids, a, b = crowd["ids"], crowd["a"], crowd["b"]
    assert _seen(engine, b) == ids[b.user_id] | ids[None]
    assert _seen(engine, a) == ids[a.user_id] | ids[None]
    assert _seen(engine, crowd["admin"]) == {r["error_id"] for r in crowd["rows"]}
    assert _seen(engine, b, ErrorFilter(search="secret plan")) == set()  # a text search does not reach them
    assert _seen(engine, a, ErrorFilter(search="secret plan")) == {
        r["error_id"] for r in crowd["rows"] if "secret plan" in r["message"]}


def test_another_persons_row_by_its_id_is_not_found(engine, crowd):
    """get_error of A's row answers None to B, as an id that does not exist does; A and the admin get it."""
    a_row = next(iter(crowd["ids"][crowd["a"].user_id]))
    with acting_as(crowd["b"]):
        assert get_error(engine, a_row) is None
    for who in (crowd["a"], crowd["admin"]):
        with acting_as(who):
            assert get_error(engine, a_row)["error_id"] == a_row


@pytest.mark.parametrize("who", ["a", "b", "admin"])
def test_the_cards_count_exactly_the_rows_of_the_table(engine, crowd, who):
    """Stats over whole hours (where the admin's come from the rollup) equal the person's table count, code by code."""
    actor = crowd[who]
    since = NOW - timedelta(hours=40)
    flt = ErrorFilter(since=since, until=NOW + timedelta(hours=1), kind=None)
    with acting_as(actor):
        stats = error_stats(engine, flt)
        table = search_errors(engine, flt, page_size=500)
        everything = error_stats(engine, ErrorFilter(kind=None))  # from the oldest row the person sees
    expected = len(crowd["ids"][None]) + (len(crowd["ids"][actor.user_id]) if who != "admin" else
                                          len(crowd["rows"]) - len(crowd["ids"][None]))
    assert stats["total"] == table.total == everything["total"] == expected
    by_code: dict[str, int] = {}
    for r in table.rows:
        by_code[r["error_code"]] = by_code.get(r["error_code"], 0) + 1
    assert {c["code"]: c["count"] for c in stats["top_codes"]} == by_code
    assert stats["unresolved"] == expected


def test_groups_count_only_the_rows_the_person_sees(engine, crowd):
    """The shared group counts B's and the system's rows for B; A's own group is not among B's groups."""
    with acting_as(crowd["b"]):
        groups = {g["fingerprint"]: g for g in error_groups(engine, ErrorFilter(kind=None))}
    assert "a" * 32 not in groups
    assert groups[SHARED_FP]["count"] == len(crowd["ids"][crowd["b"].user_id]) + 1  # B's 3 and the system's critical
    assert "secret" not in groups[SHARED_FP]["message"]
    with acting_as(crowd["admin"]):
        assert {g["fingerprint"] for g in error_groups(engine, ErrorFilter(kind=None))} >= {"a" * 32, SHARED_FP}


def test_a_toast_of_a_new_critical_error_is_only_for_those_who_may_see_it(engine, crowd):
    """new_critical gives B the system's critical row, not A's; A gets both."""
    with acting_as(crowd["b"]):
        assert [r["error_id"] for r in new_critical(engine, 0)[0]] == [
            r["error_id"] for r in crowd["rows"] if r["severity"] == "critical" and r["user_id"] is None]
    with acting_as(crowd["a"]):
        assert len(new_critical(engine, 0)[0]) == 2


def test_a_search_by_a_code_name_works_for_an_analyst_and_then_for_everyone(engine, crowd):
    """B's search for "locked" finds the db_locked rows by their code; the names it read are right for the admin too."""
    db_locked = {r["error_id"] for r in crowd["rows"] if r["error_code"] == "db_locked"}
    assert _seen(engine, crowd["b"], ErrorFilter(search="locked", kind=None)) == db_locked
    assert _seen(engine, crowd["admin"], ErrorFilter(search="locked", kind=None)) == db_locked
    assert _seen(engine, crowd["admin"], ErrorFilter(search="rate_lim", kind=None)) == {
        r["error_id"] for r in crowd["rows"] if r["error_code"] == "rate_limited"}


def _csv_ids(text: str) -> set[str]:
    return {r["error_id"] for r in csv.DictReader(io.StringIO(text))}


def test_an_export_holds_only_the_persons_rows_and_is_audited_once(engine, crowd):
    """B's CSV has B's and the system's rows; one audit row says who, the filter and how many rows."""
    b = crowd["b"]
    out = io.StringIO()
    with acting_as(b):
        count = export_csv(engine, ErrorFilter(severities=["warn"], kind=None), out)
    assert _csv_ids(out.getvalue()) == {r["error_id"] for r in crowd["rows"] if r["severity"] == "warn"
                                        and r["user_id"] in (None, b.user_id)}
    [row] = _audits(engine, AuditAction.EXPORT_ERRORS_CSV)
    assert row["actor_id"] == b.user_id and row["detail"]["rows"] == count == 6
    assert row["detail"]["filter"] == {"severities": ["warn"], "kind": None}


def test_a_download_is_audited_with_the_rows_it_holds(engine, crowd):
    """A download stopped at its size limit is audited once, counting the rows in the file, not the ones read."""
    a = crowd["a"]
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), [_row(a.user_id, i, message="m" * 900) for i in range(200)])
    with acting_as(a):
        whole = capped(iter_csv_chunks(engine, ErrorFilter(kind=None)))
        part = capped(iter_csv_chunks(engine, ErrorFilter(kind=None)), limit=100_000)
    rows = [r["detail"]["rows"] for r in _audits(engine, AuditAction.EXPORT_ERRORS_CSV)]
    assert rows == [len(_csv_ids(whole.decode())), len(_csv_ids(part.decode()))]
    assert 0 < rows[1] < rows[0]


def test_an_export_that_fails_leaves_no_audit_row(engine, crowd, monkeypatch):
    """A read that breaks off leaves no audit row."""
    def broken(*_args, **_kwargs):
        yield ["x"]
        raise RuntimeError("the connection went away")

    monkeypatch.setattr("core.errorlog.export._iter_records", broken)
    with acting_as(crowd["a"]), pytest.raises(RuntimeError):
        capped(iter_csv_chunks(engine, ErrorFilter()))
    assert _audits(engine, AuditAction.EXPORT_ERRORS_CSV) == []


def test_an_analyst_cannot_resolve_another_persons_row_by_id(engine, crowd):
    """B resolving A's row answers "not found", changes nothing (not even B's own row asked with it) and audits nothing."""
    a_row = next(iter(crowd["ids"][crowd["a"].user_id]))
    b_row = next(iter(crowd["ids"][crowd["b"].user_id]))
    with acting_as(crowd["b"]), pytest.raises(NotFoundError, match="No error with id"):
        set_resolved(engine, error_ids=[b_row, a_row], resolved=True)
    with acting_as(crowd["admin"]):
        assert not get_error(engine, a_row)["resolved"] and not get_error(engine, b_row)["resolved"]
    assert _audits(engine) == []


def test_resolving_by_id_marks_the_person_and_audits_once(engine, crowd):
    """B resolves a system row: resolved_by is B's id, one audit row with the id and the count; unresolve likewise."""
    b = crowd["b"]
    system_row = sorted(crowd["ids"][None])[0]
    with acting_as(b):
        assert set_resolved(engine, error_ids=[system_row], resolved=True) == 1
        assert get_error(engine, system_row)["resolved_by"] == b.user_id
        assert set_resolved(engine, error_ids=[system_row], resolved=False) == 1
    done, undone = _audits(engine)
    assert (done["action"], done["target_id"], done["actor_id"], done["detail"]["count"]) == (
        AuditAction.ERROR_RESOLVE.value, system_row, b.user_id, 1)
    assert (undone["action"], undone["detail"]["count"]) == (AuditAction.ERROR_UNRESOLVE.value, 1)


def test_resolve_all_changes_only_the_persons_rows_of_the_group(engine, crowd):
    """B's resolve-all of the shared group resolves B's and the system's rows in it, not A's; one audit row."""
    a, b = crowd["a"], crowd["b"]
    with acting_as(b):
        changed = set_resolved(engine, fingerprint=SHARED_FP, resolved=True)
    assert changed == len(crowd["ids"][b.user_id]) + 1
    with engine.connect() as conn:
        a_open = conn.execute(select(error_logs.c.resolved).where(error_logs.c.user_id == a.user_id)).scalars().all()
    assert a_open and not any(a_open)
    [row] = _audits(engine)
    assert (row["action"], row["target_id"], row["detail"]) == (
        AuditAction.ERROR_RESOLVE_ALL.value, SHARED_FP, {"fingerprint": SHARED_FP, "count": changed})


def test_an_admin_resolves_anyones_row(engine, crowd):
    """The admin resolves A's row; the row names the admin."""
    a_row = next(iter(crowd["ids"][crowd["a"].user_id]))
    with acting_as(crowd["admin"]):
        assert set_resolved(engine, error_ids=[a_row], resolved=True) == 1
        assert get_error(engine, a_row)["resolved_by"] == crowd["admin"].user_id


def test_a_resolve_that_fails_after_its_write_leaves_neither_the_change_nor_an_audit_row(engine, crowd, monkeypatch):
    """The audit is in the resolve's transaction: a failure after it rolls both back."""
    import core.errorlog.resolve as resolve

    real = resolve.audit

    def audit_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("lost the connection after the audit row")

    monkeypatch.setattr(resolve, "audit", audit_then_fail)
    system_row = sorted(crowd["ids"][None])[0]
    with acting_as(crowd["b"]):
        with pytest.raises(RuntimeError):
            set_resolved(engine, error_ids=[system_row], resolved=True)
        with pytest.raises(RuntimeError):
            set_resolved(engine, fingerprint=SHARED_FP, resolved=True)
        assert not get_error(engine, system_row)["resolved"]
        assert search_errors(engine, ErrorFilter(resolved=True, kind=None)).total == 0
    assert _audits(engine) == []


def test_the_cli_stats_and_export_follow_the_person_named_by_studio_user(engine, crowd, tmp_path):
    """`errors stats --json` and `errors export` as B count and write B's and the system's rows; the export is audited."""
    env = {"STUDIO_USER": "b@example.com"}
    b = crowd["b"]
    visible = crowd["ids"][b.user_id] | crowd["ids"][None]
    stats = run_cli(["errors", "stats", "--json", "--since", "2d"], env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total"] == len(visible)
    out = tmp_path / "b.csv"
    exported = run_cli(["errors", "export", "--out", str(out)], env=env)
    assert exported.returncode == 0, exported.stderr
    assert _csv_ids(out.read_text(encoding="utf-8")) == visible
    [row] = _audits(engine, AuditAction.EXPORT_ERRORS_CSV)
    assert row["actor_id"] == b.user_id and row["detail"]["rows"] == len(visible)


def test_a_cli_export_whose_file_cannot_land_leaves_no_audit_row(engine, crowd, tmp_path, monkeypatch):
    """The file is moved into place inside the audit's transaction: a failed move exits 1 with no file and no audit."""
    def refuse(*_args):
        raise PermissionError("read-only folder")

    monkeypatch.setattr("core.cli.errors.os.replace", refuse)
    out = tmp_path / "b.csv"
    exported = run_cli(["errors", "export", "--out", str(out)], env={"STUDIO_USER": "b@example.com"})
    assert exported.returncode == 1
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    assert _audits(engine, AuditAction.EXPORT_ERRORS_CSV) == []


def test_only_an_admin_applies_retention_and_a_preview_counts_what_the_person_sees(engine, crowd):
    """`errors retention --apply` as analyst B exits 1 and removes nothing; B's preview leaves A's old rows out."""
    old = NOW - timedelta(days=400)
    a, b = crowd["a"], crowd["b"]
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), [_row(a.user_id, 90, created_at=old), _row(None, 91, created_at=old)])
    refused = run_cli(["errors", "retention", "--apply"], env={"STUDIO_USER": "b@example.com"})
    assert refused.returncode == 1 and "Only an admin" in refused.stderr
    with acting_as(b):
        assert retention_preview(engine)["total"] == 1
    with acting_as(crowd["admin"]):
        assert retention_preview(engine)["total"] == 2
        assert apply_retention(engine)["total"] == 2
