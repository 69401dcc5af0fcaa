"""Error-log queries, CSV export and seeding on SQLite and Postgres (the `engine` fixture)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from core.auth import current_actor
from core.errorlog import (
    ErrorFilter,
    apply_retention,
    error_groups,
    error_groups_page,
    error_stats,
    get_error,
    retention_preview,
    search_errors,
    set_resolved,
)
from core.errorlog.export import EXPORT_COLUMNS, export_csv, iter_csv_chunks
from core.errorlog.fingerprint import fingerprint
from core.errorlog.seed import seed_errors
from core.errors import ValidationError
from core.store.schema import error_logs
from core.store.tx import write_tx

NOW = datetime.now(UTC).replace(microsecond=0)


def make_row(message: str = "boom", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "error_id": uuid.uuid4().hex,
        "created_at": NOW - timedelta(minutes=5),
        "error_type": "api",
        "error_code": "rate_limited",
        "severity": "warn",
        "message": message,
        "user_message": "It will be retried.",
        "context": {"model": "m"},
        "stack_trace": "Traceback: line 1",
        "component": "claude_client",
        "request_id": None,
        "operation_id": None,
        "attempt": 1,
        "user_id": "ana",
        "session_id": "s1",
        "environment": "test",
        "is_recoverable": True,
        "recovery_action": "retry",
        "recovered": False,
        "resolved": False,
    }
    row.update(overrides)
    if "fingerprint" not in overrides:
        row["fingerprint"] = fingerprint(row["error_type"], row["error_code"], row["component"], row["message"])
    return row


def insert(engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), rows)
    return rows


def ids(rows) -> set[str]:
    return {r["error_id"] for r in rows}


def all_matching(engine, flt: ErrorFilter) -> list[dict[str, Any]]:
    page = search_errors(engine, flt, page_size=500)
    assert page.total == len(page.rows)
    return page.rows


NASTY = [
    "50% off_load 'quoted' back\\slash \"; drop table error_logs; -- .* [a-z]+ (a|b)",
    "50X offXload quoted backslash drop table error_logs .. az+",
    "progress 100% done",
    "progress 1000 done",
    "snake_case_name",
    "snakeXcaseXname",
    "it's here",
    "its here",
    "C:\\temp\\file",
    "C:/temp/file",
    'said "; DROP TABLE users',
    "regex .* literal",
    "regex abc literal",
    "class [a-z]+ literal",
    "class q literal",
    "ÜBER unicode Ünïcödé",
    "plain message",
]
NEEDLES = ["%", "_", "'", "\\", '"; drop table', '"; DROP TABLE', ".*", "[a-z]+", "50% off_load", "% off",
           "_case_", "C:\\temp", "it's", "(a|b)", "drop table error_logs;", "--", "unicode", "z"]


def test_search_with_sql_like_and_regex_syntax_finds_literally_what_it_says(engine):
    """Each needle full of SQL, LIKE and regex syntax returns exactly the messages containing it literally."""
    insert(engine, [make_row(m) for m in NASTY])
    for needle in NEEDLES:
        found = {r["message"] for r in all_matching(engine, ErrorFilter(search=needle))}
        # the search covers the code and the component too (every row here: rate_limited, claude_client)
        in_labels = needle.lower() in "rate_limited" or needle.lower() in "claude_client"
        expected = {m for m in NASTY if needle.lower() in m.lower() or in_labels}
        assert found == expected, needle
        assert expected, f"needle {needle!r} should match something"
    # nothing was dropped, and the index still agrees with the table
    assert inspect(engine).has_table("error_logs")
    assert search_errors(engine).total == len(NASTY)


def test_search_is_case_insensitive_and_serves_short_and_long_needles(engine):
    """A needle matches regardless of case, whether shorter or longer than a trigram."""
    insert(engine, [make_row("Connection REFUSED by peer"), make_row("refusal noted"), make_row("ok")])
    assert {r["message"] for r in all_matching(engine, ErrorFilter(search="refused"))} == {
        "Connection REFUSED by peer"}
    assert {r["message"] for r in all_matching(engine, ErrorFilter(search="RE"))} == {
        "Connection REFUSED by peer", "refusal noted"}
    assert all_matching(engine, ErrorFilter(search="no such text anywhere")) == []


def _dataset() -> list[dict[str, Any]]:
    rows = []
    specs = [
        # (minutes ago, type, code, severity, component, batch, resolved, recoverable, recovered)
        (10, "api", "rate_limited", "warn", "claude_client", "b1", False, True, True),
        (20, "api", "rate_limited", "warn", "batch_worker", "b1", False, True, True),
        (30, "api", "overloaded", "warn", "batch_worker", "b2", True, True, False),
        (70, "api", "server_error", "error", "claude_client", None, False, True, False),
        (90, "network", "timeout", "warn", "claude_client", "b2", False, True, True),
        (60 * 20, "database", "db_locked", "error", "store", "b3", False, True, True),
        (60 * 20, "validation", "invalid_input", "info", "page.generate", None, True, False, False),
        (60 * 24 * 3, "api", "authentication_failed", "critical", "claude_client", None, False, False, False),
        (60 * 24 * 10, "ui", "internal", "error", "page.batches", None, False, False, False),
        (60 * 24 * 10 + 5, "ui", "internal", "debug", "page.batches", None, False, False, False),
    ]
    for i, (minutes, etype, code, sev, comp, batch, resolved, recoverable, recovered) in enumerate(specs):
        rows.append(make_row(
            f"{code} number {i}", created_at=NOW - timedelta(minutes=minutes), error_type=etype,
            error_code=code, severity=sev, component=comp, operation_id=batch, resolved=resolved,
            is_recoverable=recoverable, recovered=recovered, request_id=f"req_{i}"))
    return rows


def _python_filter(rows, flt: ErrorFilter) -> set[str]:
    def keep(r) -> bool:
        return all([
            not flt.search or any(flt.search.lower() in (r[k] or "").lower()
                                  for k in ("message", "error_code", "component")),
            not flt.types or r["error_type"] in flt.types,
            not flt.severities or r["severity"] in flt.severities,
            not flt.codes or r["error_code"] in flt.codes,
            not flt.components or r["component"] in flt.components,
            flt.since is None or r["created_at"] >= flt.since,
            flt.until is None or r["created_at"] < flt.until,
            flt.resolved is None or r["resolved"] == flt.resolved,
            not flt.request_id or r["request_id"] == flt.request_id,
            not flt.operation_id or r["operation_id"] == flt.operation_id,
            not flt.fingerprint or r["fingerprint"] == flt.fingerprint,
        ])
    return {r["error_id"] for r in rows if keep(r)}


def test_filters_combine_as_and_across_fields_and_or_within_one(engine):
    """Every filter combination returns exactly the rows that satisfy all of its fields."""
    rows = insert(engine, _dataset())
    filters = [
        ErrorFilter(types=["api"], severities=["warn"]),
        ErrorFilter(types=["api", "network"], since=NOW - timedelta(hours=1)),
        ErrorFilter(severities=["error", "critical"], resolved=False),
        ErrorFilter(codes=["rate_limited"], components=["batch_worker"]),
        ErrorFilter(operation_id="b2"),
        ErrorFilter(operation_id="b2", resolved=True),
        ErrorFilter(request_id="req_3"),
        ErrorFilter(fingerprint=rows[0]["fingerprint"]),
        ErrorFilter(since=NOW - timedelta(days=7), until=NOW - timedelta(hours=1)),
        ErrorFilter(search="number", types=["ui"], severities=["debug"]),
        ErrorFilter(search="rate_limited", components=["claude_client", "store"]),
        ErrorFilter(types=["api"], severities=["warn"], since=NOW - timedelta(days=7), resolved=False),
    ]
    for flt in filters:
        expected = _python_filter(rows, flt)
        assert ids(all_matching(engine, flt)) == expected, flt
        assert expected, f"filter {flt} should match something"


def test_paging_returns_disjoint_pages_newest_first_with_the_same_total(engine):
    """23 rows in pages of 10 come back as 10, 10 and 3, newest first, each with total 23."""
    rows = insert(engine, [make_row(f"row {i}", created_at=NOW - timedelta(minutes=i)) for i in range(23)])
    pages = [search_errors(engine, page=p, page_size=10) for p in (1, 2, 3, 4)]
    assert [len(p.rows) for p in pages] == [10, 10, 3, 0]
    assert all(p.total == 23 and p.pages == 3 for p in pages)
    seen = [r["error_id"] for p in pages for r in p.rows]
    assert seen == [r["error_id"] for r in rows]  # rows were made newest first
    oldest = search_errors(engine, page=1, page_size=5, order="oldest")
    assert [r["error_id"] for r in oldest.rows] == [r["error_id"] for r in reversed(rows)][:5]
    assert "stack_trace" not in pages[0].rows[0]


def test_paging_arguments_are_validated(engine):
    """Page 0, an oversized page or an unknown order is refused with the field named."""
    for kwargs, field in (({"page": 0}, "page"), ({"page_size": 10_000}, "page_size"), ({"order": "x"}, "order")):
        with pytest.raises(ValidationError) as info:
            search_errors(engine, **kwargs)
        assert info.value.field == field


def test_stats_count_a_known_data_set(engine):
    """Totals, by-severity, by-type, codes, shares and hourly series match the data inserted."""
    insert(engine, _dataset())
    stats = error_stats(engine, since=NOW - timedelta(hours=24), until=NOW)
    assert stats["total"] == 7
    assert stats["by_severity"] == {"debug": 0, "info": 1, "warn": 4, "error": 2, "critical": 0}
    assert {k: v for k, v in stats["by_type"].items() if v} == {
        "api": 4, "network": 1, "database": 1, "validation": 1}
    assert stats["top_codes"][0] == {"code": "rate_limited", "count": 2}
    assert stats["recoverable"] == 6 and stats["recovered"] == 4 and stats["unresolved"] == 5
    assert stats["recoverable_share"] == pytest.approx(6 / 7)
    assert stats["recovered_share"] == pytest.approx(4 / 7)
    assert len(stats["buckets"]) in (24, 25)  # a window not aligned to the hour spans 25 buckets
    assert sum(sum(s) for s in stats["series_by_type"].values()) == 7
    assert sum(sum(s) for s in stats["series_by_severity"].values()) == 7
    newest_bucket = max(i for i, n in enumerate(stats["series_by_type"]["api"]) if n)
    assert datetime.fromisoformat(stats["buckets"][newest_bucket]) <= NOW - timedelta(minutes=10)
    daily = error_stats(engine, since=NOW - timedelta(days=30), bucket="day")
    assert daily["total"] == 10 and len(daily["buckets"]) == 31
    assert sum(daily["series_by_severity"]["error"]) == 3


def test_groups_count_per_fingerprint(engine):
    """Groups carry count, first/last seen, latest message, highest severity, batches and unresolved."""
    fp = "f" * 16
    insert(engine, [
        make_row("timeout 1", fingerprint=fp, created_at=NOW - timedelta(hours=3), operation_id="b1",
                 severity="warn"),
        make_row("timeout 2", fingerprint=fp, created_at=NOW - timedelta(hours=2), operation_id="b2",
                 severity="error", resolved=True),
        make_row("timeout 3", fingerprint=fp, created_at=NOW - timedelta(hours=1), operation_id="b1",
                 severity="warn"),
        make_row("timeout 4", fingerprint=fp, created_at=NOW - timedelta(hours=4), operation_id=None,
                 severity="info"),
        make_row("other", fingerprint="e" * 16, created_at=NOW - timedelta(minutes=1), severity="critical",
                 error_type="database", error_code="db_locked", component="store"),
    ])
    groups = error_groups(engine)
    assert [g["fingerprint"] for g in groups] == ["e" * 16, fp]  # most recently seen first
    g = groups[1]
    assert (g["count"], g["batches"], g["unresolved"], g["severity"]) == (4, 2, 3, "error")
    assert g["first_seen"] == NOW - timedelta(hours=4) and g["last_seen"] == NOW - timedelta(hours=1)
    assert g["message"] == "timeout 3"
    assert groups[0]["error_code"] == "db_locked" and groups[0]["count"] == 1
    filtered = error_groups(engine, ErrorFilter(search="timeout", severities=["warn"]))
    assert [(x["count"], x["message"]) for x in filtered] == [(2, "timeout 3")]
    assert error_groups(engine, ErrorFilter(search="nothing like it")) == []


def test_resolve_and_unresolve_by_id_and_by_fingerprint(engine):
    """set_resolved changes only rows not already in that state and reports how many changed."""
    fp = "a" * 16
    rows = insert(engine, [make_row(f"r{i}", fingerprint=fp) for i in range(3)] + [make_row("other")])
    assert set_resolved(engine, error_ids=[rows[0]["error_id"]], resolved=True) == 1
    assert set_resolved(engine, error_ids=[rows[0]["error_id"]], resolved=True) == 0
    one = get_error(engine, rows[0]["error_id"])
    me = current_actor(engine).user_id
    assert one is not None and one["resolved"] and one["resolved_by"] == me and one["resolved_at"] is not None
    assert set_resolved(engine, fingerprint=fp, resolved=True) == 2
    assert search_errors(engine, ErrorFilter(resolved=False)).total == 1
    assert set_resolved(engine, fingerprint=fp, resolved=False) == 3
    again = get_error(engine, rows[0]["error_id"])
    assert again is not None and not again["resolved"] and again["resolved_by"] is None
    with pytest.raises(ValidationError):
        set_resolved(engine, resolved=True)


def test_get_error_returns_the_whole_row_or_none(engine):
    """get_error includes the stack trace and context; an unknown id gives None."""
    row = insert(engine, [make_row("detail", context={"k": [1, 2]})])[0]
    got = get_error(engine, row["error_id"])
    assert got is not None and got["stack_trace"] == "Traceback: line 1" and got["context"] == {"k": [1, 2]}
    assert got["created_at"] == row["created_at"]
    assert get_error(engine, "nope") is None


def test_retention_removes_exactly_the_rows_past_their_window(engine):
    """Error/critical rows go after 180 days, the rest after 30; the preview counts what apply removes."""
    now = NOW
    keep = insert(engine, [
        make_row("err 179d", severity="error", created_at=now - timedelta(days=179)),
        make_row("crit 100d", severity="critical", created_at=now - timedelta(days=100)),
        make_row("warn 29d", severity="warn", created_at=now - timedelta(days=29)),
        make_row("info new", severity="info", created_at=now - timedelta(hours=1)),
    ])
    drop = insert(engine, [
        make_row("err 181d", severity="error", created_at=now - timedelta(days=181)),
        make_row("crit 200d", severity="critical", created_at=now - timedelta(days=200)),
        make_row("warn 31d", severity="warn", created_at=now - timedelta(days=31)),
        make_row("debug 40d", severity="debug", created_at=now - timedelta(days=40)),
        make_row("info 170d", severity="info", created_at=now - timedelta(days=170)),
    ])
    preview = retention_preview(engine, now=now)
    assert (preview["error_or_critical"], preview["other"], preview["total"]) == (2, 3, 5)
    assert search_errors(engine).total == 9  # the preview removed nothing
    applied = apply_retention(engine, now=now)
    assert (applied["error_or_critical"], applied["other"], applied["total"]) == (2, 3, 5)
    assert ids(all_matching(engine, ErrorFilter())) == ids(keep)
    # the text index forgot the removed rows too
    assert all_matching(engine, ErrorFilter(search="181d")) == []
    assert not ids(drop) & ids(all_matching(engine, ErrorFilter(search="d")))
    assert retention_preview(engine, now=now)["total"] == 0


def _read_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
    return list(reader)


def test_csv_export_has_exactly_the_filtered_rows_in_list_order(engine):
    """The CSV parses with the csv module and holds the same rows, in the same order, as the search."""
    insert(engine, _dataset() + [make_row(m) for m in NASTY])
    for flt in (ErrorFilter(), ErrorFilter(types=["api"], severities=["warn"]),
                ErrorFilter(search='"; drop table'), ErrorFilter(search="%"),
                ErrorFilter(operation_id="b1", since=NOW - timedelta(hours=1)), ErrorFilter(search="absent")):
        out = io.StringIO(newline="")
        count = export_csv(engine, flt, out)
        records = _read_csv(out.getvalue())
        listed = all_matching(engine, flt)
        assert count == len(records) == len(listed)
        assert [r["error_id"] for r in records] == [r["error_id"] for r in listed]
        assert "".join(iter_csv_chunks(engine, flt)) == out.getvalue()
    nasty = _read_csv(_export(engine, ErrorFilter(search="50% off_load")))
    assert [r["message"] for r in nasty] == [NASTY[0]]


def _export(engine, flt: ErrorFilter) -> str:
    out = io.StringIO(newline="")
    export_csv(engine, flt, out)
    return out.getvalue()


def test_csv_cells_that_could_be_formulas_are_prefixed_with_a_quote(engine):
    """Cells starting with =, +, -, @, tab or carriage return get a leading single quote; others do not."""
    risky = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tindent", "\rreturn"]
    insert(engine, [make_row(m, component="=cmd|' /C calc'!A0", request_id=f"r{i}") for i, m in enumerate(risky)]
           + [make_row("safe - text = fine", request_id="safe")])
    records = {r["request_id"]: r for r in _read_csv(_export(engine, ErrorFilter()))}
    for i, m in enumerate(risky):
        assert records[f"r{i}"]["message"] == "'" + m
        assert records[f"r{i}"]["component"] == "'=cmd|' /C calc'!A0"
    assert records["safe"]["message"] == "safe - text = fine"
    assert records["safe"]["created_at"].startswith(str(NOW.year))


def test_csv_chunks_stream_large_exports_in_pieces(engine):
    """A large export arrives as several chunks whose concatenation has every row."""
    seed_errors(engine, 3000, seed=7)
    chunks = list(iter_csv_chunks(engine, ErrorFilter()))
    assert len(chunks) > 3
    assert len(_read_csv("".join(chunks))) == 3000


def test_seeded_rows_are_varied_and_fingerprinted_like_the_recorder(engine):
    """Seeding writes the rows asked for, across types, codes, severities and batches, with recorder fingerprints."""
    assert seed_errors(engine, 5000, days=30, seed=1) == 5000
    with engine.connect() as conn:
        c = error_logs.c
        assert conn.execute(select(func.count(c.error_type.distinct()))).scalar_one() >= 5
        assert conn.execute(select(func.count(c.error_code.distinct()))).scalar_one() >= 10
        assert conn.execute(select(func.count(c.severity.distinct()))).scalar_one() == 5
        assert conn.execute(select(func.count(c.operation_id.distinct()))).scalar_one() >= 10
        oldest = conn.execute(select(func.min(c.created_at))).scalar_one()
        sample = conn.execute(select(c.error_type, c.error_code, c.component, c.message, c.fingerprint,
                                     c.error_id, c.created_at).order_by(c.id).limit(400)).all()
    assert NOW - timedelta(days=31) < oldest < NOW - timedelta(days=25)
    # error ids are UUIDv7 like the recorder's: their first 48 bits are the row's time in ms
    for r in sample:
        assert uuid.UUID(r.error_id).version == 7
        assert int(r.error_id[:12], 16) == int(r.created_at.timestamp() * 1000)
    assert len({r.error_id for r in sample}) == len(sample)
    for r in sample:
        assert r.fingerprint == fingerprint(r.error_type, r.error_code, r.component, r.message)
    assert len({r.message for r in sample}) > 300  # ids and numbers vary
    assert len(error_groups(engine, limit=500)) < 100  # ... yet they group


def test_filter_validation_names_the_field(engine):
    """Bad filters raise ValidationError naming the field, before any query runs."""
    cases = [
        ({"search": "x" * 10_000}, "search"),
        ({"search": "nul\x00byte"}, "search"),
        ({"severities": ["fatal"]}, "severity"),
        ({"types": ["weird"]}, "type"),
        ({"since": NOW, "until": NOW - timedelta(days=1)}, "until"),
        ({"since": "yesterday"}, "since"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as info:
            ErrorFilter(**kwargs)
        assert info.value.field == field, kwargs
    assert ErrorFilter(since=datetime(2026, 1, 1)).since == datetime(2026, 1, 1, tzinfo=UTC)


def _rollup_matches_rows(engine) -> None:
    from collections import Counter

    from core.store.schema import error_log_rollup

    c = error_logs.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.created_at, c.error_type, c.severity, c.error_code, c.is_recoverable,
                                   c.recovered, c.resolved)).all()
        rollup = conn.execute(select(error_log_rollup)).all()
    expected = Counter((r.created_at.strftime("%Y-%m-%d %H"), r.error_type, r.severity, r.error_code,
                        bool(r.is_recoverable), bool(r.recovered), bool(r.resolved)) for r in rows)
    actual = {(r.bucket, r.error_type, r.severity, r.error_code, bool(r.is_recoverable), bool(r.recovered),
               bool(r.resolved)): int(r.n) for r in rollup if r.n}
    assert actual == dict(expected)


def test_hourly_rollup_stays_exact_through_inserts_resolves_and_deletes(engine):
    """The triggers keep error_log_rollup equal to counting the rows, whatever writes them."""
    seed_errors(engine, 3000, days=60, seed=11)  # bulk path (COPY / multi-row insert)
    insert(engine, _dataset())  # executemany path
    _rollup_matches_rows(engine)
    groups = error_groups(engine, limit=5)
    assert set_resolved(engine, fingerprint=groups[0]["fingerprint"], resolved=True) > 0
    _rollup_matches_rows(engine)
    assert apply_retention(engine)["total"] > 0
    _rollup_matches_rows(engine)
    # stats over a window that mixes whole hours (rollup) and part hours (rows) add up to the rows
    since, until = NOW - timedelta(days=20, minutes=17), NOW - timedelta(minutes=3)
    with engine.connect() as conn:
        direct = conn.execute(select(error_logs.c.severity, func.count()).where(
            error_logs.c.created_at >= since, error_logs.c.created_at < until).group_by(error_logs.c.severity)).all()
    stats = error_stats(engine, since=since, until=until, bucket="day")
    assert {k: v for k, v in stats["by_severity"].items() if v} == {s: n for s, n in direct}
    assert sum(sum(v) for v in stats["series_by_type"].values()) == stats["total"]


def test_totals_from_the_rollup_equal_counting_the_rows(engine):
    """Totals the rollup can answer (type, severity, code, resolved, time) equal a plain count."""
    seed_errors(engine, 4000, days=10, seed=21)
    c = error_logs.c
    odd = NOW - timedelta(days=3, minutes=37, seconds=5)
    cases = [
        (ErrorFilter(), []),
        (ErrorFilter(types=["api"], severities=["warn", "error"]),
         [c.error_type == "api", c.severity.in_(["warn", "error"])]),
        (ErrorFilter(since=odd), [c.created_at >= odd]),
        (ErrorFilter(until=odd, codes=["rate_limited"]), [c.created_at < odd, c.error_code == "rate_limited"]),
        (ErrorFilter(since=odd - timedelta(days=2, minutes=11), until=odd, resolved=True),
         [c.created_at >= odd - timedelta(days=2, minutes=11), c.created_at < odd, c.resolved.is_(True)]),
        (ErrorFilter(since=odd, until=odd + timedelta(minutes=50)),
         [c.created_at >= odd, c.created_at < odd + timedelta(minutes=50)]),
    ]
    for flt, where in cases:
        assert search_errors(engine, flt).total == row_count(engine, *where), flt


def row_count(engine, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(error_logs).where(*where)).scalar_one()


def test_recorded_secrets_do_not_reach_the_csv(engine):
    """Errors recorded with secrets in message and context come out of the export without them."""
    from core.errorlog import flush, record

    secrets = ["sk-ant-api03-" + "A1b2C3d4" * 10, "hunter2-super-secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"]
    record(ValueError(f"login failed for postgresql://app:{secrets[1]}@db:5432/x with key {secrets[0]}"),
           component="store", context={"api_key": secrets[0], "headers": {"Authorization": f"Bearer {secrets[2]}"}},
           operation_id="batch-secret")
    assert flush(30)
    text = _export(engine, ErrorFilter(operation_id="batch-secret"))
    records = _read_csv(text)
    assert len(records) == 1 and "login failed" in records[0]["message"]
    for secret in secrets:
        assert secret not in text


def _csv_rows(engine, flt: ErrorFilter) -> int:
    return len(_read_csv(_export(engine, flt)))


def test_cards_table_groups_and_csv_count_the_same_rows_under_every_filter(engine):
    """For each filter the stats total, the list's total, the groups' counts and the CSV rows agree."""
    rows = insert(engine, _dataset())
    filters = [
        ErrorFilter(search="number 3"),
        ErrorFilter(types=["api"]),
        ErrorFilter(severities=["warn"]),
        ErrorFilter(codes=["rate_limited"]),
        ErrorFilter(components=["batch_worker"]),
        ErrorFilter(operation_id="b2"),
        ErrorFilter(request_id="req_4"),
        ErrorFilter(resolved=True),
        ErrorFilter(since=NOW - timedelta(hours=2)),
        ErrorFilter(since=NOW - timedelta(days=7), until=NOW - timedelta(hours=1), severities=["error"]),
    ]
    for flt in filters:
        expected = len(_python_filter(rows, flt))
        stats = error_stats(engine, flt)
        groups = error_groups(engine, flt, limit=500)
        assert stats["total"] == search_errors(engine, flt).total == _csv_rows(engine, flt) == expected, flt
        assert sum(g["count"] for g in groups) == expected, flt
        assert sum(sum(s) for s in stats["series_by_severity"].values()) == expected, flt
        assert sum(t["count"] for t in stats["top_codes"]) == expected, flt
        assert expected and expected < len(rows), f"filter {flt} should narrow the rows"


def test_stats_of_a_filter_the_rollup_can_answer_equal_counting_the_rows(engine):
    """Type, severity, code and status over a month of seeded rows: the cards count what the list counts."""
    seed_errors(engine, 3000, days=30, seed=5)
    for flt in (ErrorFilter(severities=["critical"]), ErrorFilter(types=["api"], resolved=False),
                ErrorFilter(codes=["rate_limited"], since=NOW - timedelta(days=9, minutes=13))):
        total = search_errors(engine, flt).total
        assert error_stats(engine, flt)["total"] == total > 0, flt
    assert error_stats(engine)["total"] == 3000  # no start: from the oldest row


def test_sorting_orders_the_whole_filtered_set_not_one_page(engine):
    """Time ascending starts at the oldest row; severity, type, code and component sort every match."""
    seed_errors(engine, 1500, days=20, seed=3)
    c = error_logs.c
    with engine.connect() as conn:
        oldest = conn.execute(select(c.error_id).order_by(c.created_at, c.id).limit(1)).scalar_one()
        first_code = conn.execute(select(func.min(c.error_code))).scalar_one()
        last_type = conn.execute(select(func.max(c.error_type))).scalar_one()
    assert search_errors(engine, order="oldest", page_size=25).rows[0]["error_id"] == oldest
    assert search_errors(engine, sort="code", order="oldest", page_size=25).rows[0]["error_code"] == first_code
    assert search_errors(engine, sort="type", page_size=25).rows[0]["error_type"] == last_type
    worst = search_errors(engine, sort="severity", page_size=25).rows
    assert {r["severity"] for r in worst} == {"critical"}
    mildest = search_errors(engine, ErrorFilter(types=["api"]), sort="severity", order="oldest", page_size=25).rows
    assert {r["severity"] for r in mildest} <= {"debug", "info"} and {r["error_type"] for r in mildest} == {"api"}
    pages = [search_errors(engine, sort="component", page=p, page_size=200).rows for p in range(1, 9)]
    names = [r["component"] or "" for page in pages for r in page]
    assert len(names) == 1500 and names == sorted(names, reverse=True)
    with pytest.raises(ValidationError) as info:
        search_errors(engine, sort="message")
    assert info.value.field == "sort"


def test_groups_sort_by_count_over_all_groups(engine):
    """Sorted by count, the largest group comes first even when it was not seen last."""
    insert(engine, [make_row("big", fingerprint="b" * 16, created_at=NOW - timedelta(hours=5)) for _ in range(4)]
           + [make_row("small", fingerprint="s" * 16, created_at=NOW - timedelta(minutes=1))])
    assert [g["fingerprint"] for g in error_groups(engine)] == ["s" * 16, "b" * 16]
    assert [g["count"] for g in error_groups(engine, sort="count")] == [4, 1]


def test_group_pages_count_every_group_the_filters_select(engine):
    """Seven groups a page of three: pages of 3, 3 and 1 in the order of the whole list, each saying 7 in all."""
    insert(engine, [make_row(f"kind {k}", fingerprint=f"{k:016d}", created_at=NOW - timedelta(minutes=k))
                    for k in range(7) for _ in range(k + 1)])
    pages = [error_groups_page(engine, page=p, page_size=3, sort="count") for p in (1, 2, 3)]
    assert [(pg.total, pg.pages, len(pg.rows)) for pg in pages] == [(7, 3, 3), (7, 3, 3), (7, 3, 1)]
    assert [g["count"] for pg in pages for g in pg.rows] == [7, 6, 5, 4, 3, 2, 1]
    assert [g["fingerprint"] for g in error_groups(engine, limit=7, sort="count")] == [
        g["fingerprint"] for pg in pages for g in pg.rows]
    past = error_groups_page(engine, page=9, page_size=3)
    assert past.rows == [] and past.total == 7  # past the last page it still says how many there are
    assert error_groups_page(engine, ErrorFilter(search="kind 3"), page_size=3).total == 1


def test_search_finds_rows_by_their_code_and_their_component(engine):
    """'timeout' finds request_timeout rows whose message never says it; a component name finds its rows."""
    timed_out = insert(engine, [make_row("the upstream took too long", error_type="network",
                                         error_code="request_timeout", component="claude_client")])
    insert(engine, [make_row("slow disk", error_code="db_locked", component="store"),
                    make_row("no answer", error_code="overloaded", component="batch_worker")])
    assert ids(all_matching(engine, ErrorFilter(search="timeout"))) == ids(timed_out)
    assert ids(all_matching(engine, ErrorFilter(search="TIMEOUT", types=["network"]))) == ids(timed_out)
    assert {r["component"] for r in all_matching(engine, ErrorFilter(search="worker"))} == {"batch_worker"}
    assert error_stats(engine, ErrorFilter(search="timeout"))["total"] == 1
    assert [g["error_code"] for g in error_groups(engine, ErrorFilter(search="timeout"))] == ["request_timeout"]


def test_a_search_naming_a_code_counts_its_time_range_from_an_index_alone(tmp_path):
    """SQLite counts a week of a named code's rows in the (code, time) index, not row by row over all time."""
    from sqlalchemy import event

    from core.store import create_store_engine, migrate

    sqlite = create_store_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(sqlite, force=True)
    insert(sqlite, [make_row("the upstream took too long", error_code="request_timeout")])
    counts: list[tuple[str, Any]] = []

    @event.listens_for(sqlite, "before_cursor_execute")
    def _keep(_conn, _cursor, statement, params, _context, _many):
        if statement.lstrip().upper().startswith("SELECT COUNT"):
            counts.append((statement, params))

    assert search_errors(sqlite, ErrorFilter(search="timeout", since=NOW - timedelta(days=7))).total == 1
    event.remove(sqlite, "before_cursor_execute", _keep)
    with sqlite.connect() as conn:
        plan = [row[-1] for s, p in counts for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)]
    assert any("COVERING INDEX ix_error_logs_code_created (error_code=? AND created_at>?)" in step
               for step in plan), plan
    sqlite.dispose()


def _breaker_events() -> list[dict[str, Any]]:
    return [make_row(f"Circuit 'claude' is now {state}", error_code=code, component="breaker.claude",
                     severity="warn" if code == "circuit_opened" else "info", created_at=NOW - timedelta(hours=h))
            for h, (state, code) in enumerate([("open", "circuit_opened"), ("half_open", "circuit_half_open"),
                                               ("closed", "circuit_closed")], start=1)]


def test_breaker_state_changes_are_events_left_out_of_error_counts_by_default(engine):
    """A breaker's opened/half-open/closed rows count neither in the stats, the list, the groups nor the CSV."""
    errors = insert(engine, [make_row("refused", error_code="circuit_open", component="batch_worker"),
                             make_row("slow", created_at=NOW - timedelta(hours=30))])
    events = insert(engine, _breaker_events())
    for flt in (ErrorFilter(), ErrorFilter(since=NOW - timedelta(days=3)), ErrorFilter(search="circuit"),
                ErrorFilter(severities=["warn", "info"])):
        expected = _python_filter(errors, flt)
        assert ids(all_matching(engine, flt)) == expected, flt
        assert error_stats(engine, flt)["total"] == len(expected) == _csv_rows(engine, flt), flt
        assert sum(g["count"] for g in error_groups(engine, flt)) == len(expected), flt
    shown = ErrorFilter(kind="event", since=NOW - timedelta(days=3))
    assert ids(all_matching(engine, shown)) == ids(events)
    assert error_stats(engine, shown)["total"] == 3
    assert search_errors(engine, ErrorFilter(kind=None)).total == 5
    with pytest.raises(ValidationError) as info:
        ErrorFilter(kind="note")
    assert info.value.field == "kind"


def test_minute_buckets_spread_an_incident_over_its_minutes(engine):
    """Rows five minutes apart land in separate minute bars that sum to the total; a week of minutes is refused."""
    start = NOW.replace(second=0) - timedelta(minutes=40)
    insert(engine, [make_row(created_at=start + timedelta(minutes=5 * i, seconds=7)) for i in range(6)])
    stats = error_stats(engine, ErrorFilter(since=start, until=start + timedelta(hours=1)), bucket="minute")
    counts = stats["series_by_severity"]["warn"]
    assert len(stats["buckets"]) == 60 and stats["total"] == sum(counts) == 6
    assert [i for i, n in enumerate(counts) if n] == [0, 5, 10, 15, 20, 25]
    with pytest.raises(ValidationError) as info:
        error_stats(engine, ErrorFilter(since=NOW - timedelta(days=7)), bucket="minute")
    assert info.value.field == "bucket"
