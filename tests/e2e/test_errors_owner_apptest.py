"""The Errors page as an analyst: cards, table and detail hold their rows and the system's, never another person's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from people import person

from core.auth import Role, acting_as
from core.auth.local import forget_local_user
from core.config import reload_settings
from core.errorlog import ErrorFilter, error_stats, search_errors
from core.store.schema import error_logs
from core.store.tx import write_tx


def _card(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _table_total(at) -> int:
    caption = next(c.value for c in at.caption if "matching rows" in c.value)
    return int(caption.split("·")[1].split()[0].replace(",", ""))


def _rows(owner: str | None, label: str, n: int) -> list[dict]:
    now = datetime.now(UTC) - timedelta(minutes=10)
    return [{"error_id": uuid.uuid4().hex, "created_at": now - timedelta(minutes=i), "error_type": "api",
             "error_code": "rate_limited", "severity": "error", "message": f"{label} {i}", "component": "claude_client",
             "fingerprint": uuid.uuid4().hex, "user_id": owner, "is_recoverable": True, "recovered": False,
             "resolved": False} for i in range(n)]


def test_an_analyst_sees_counts_and_rows_of_their_own_not_the_admins_cached_ones(open_page, engine, monkeypatch):
    """The local admin opens Errors first (its counts cached), then analyst B: B's cards equal B's table, no A rows."""
    a, b = person(engine, "a@example.com"), person(engine, "b@example.com")
    a_rows, b_rows = _rows(a.user_id, "only-a", 5), _rows(b.user_id, "b-own", 3)
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), a_rows + b_rows + _rows(None, "system-wide", 2))
    admin_total = _card(open_page("errors"), "Errors")

    monkeypatch.setenv("STUDIO_USER", "b@example.com")  # local mode: the page runs as the user it names
    reload_settings()
    forget_local_user()
    at = open_page("errors")
    assert not at.exception
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=7)
    with acting_as(b):
        expected = search_errors(engine, ErrorFilter(since=since)).total
    assert _card(at, "Errors") == _table_total(at) == expected < admin_total
    messages = " ".join(at.dataframe[0].value["message"])
    assert "b-own" in messages and "system-wide" in messages and "only-a" not in messages
    at.text_input(key="errors.open_id").input(a_rows[0]["error_id"]).run()
    assert any("No error with id" in w.value for w in at.warning)  # A's row by its id: as if it did not exist


def test_homes_error_counts_are_the_persons_not_the_admins_cached_ones(open_page, engine, monkeypatch):
    """Home's last-24-hours cards, opened by the admin and then by analyst B, show B the counts of B's rows."""
    a, b = person(engine, "a@example.com"), person(engine, "b@example.com")
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), _rows(a.user_id, "only-a", 5) + _rows(b.user_id, "b-own", 3))
    admin_errors = _card(open_page("home"), "error")
    monkeypatch.setenv("STUDIO_USER", "b@example.com")
    reload_settings()
    forget_local_user()
    at = open_page("home")
    since = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    with acting_as(b):
        expected = error_stats(engine, since=since)["by_severity"]["error"]
    assert _card(at, "error") == expected < admin_errors and expected >= 3


def test_the_detail_names_who_caused_and_who_resolved_an_error(open_page, engine):
    """An error's detail shows its person and its resolver by name, not by their uuid."""
    from core.errorlog import set_resolved

    a, boss = person(engine, "a@example.com"), person(engine, "boss@example.com", Role.ADMIN)
    row = _rows(a.user_id, "caused by a", 1)[0]
    with write_tx(engine) as conn:
        conn.execute(error_logs.insert(), [row])
    with acting_as(boss):
        set_resolved(engine, error_ids=[row["error_id"]], resolved=True)
    at = open_page("errors")
    at.text_input(key="errors.open_id").input(row["error_id"]).run()
    meta = json.loads(next(str(j.value) for j in at.json if "resolved_by" in str(j.value)))
    assert (meta["user_id"], meta["resolved_by"]) == ("a", "boss")
    assert a.user_id not in str(meta) and boss.user_id not in str(meta)
