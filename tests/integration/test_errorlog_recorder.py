"""The error recorder on SQLite and Postgres: rows arrive redacted, group by fingerprint, survive outages."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from core.auth import Actor, Role, acting_as
from core.config import get_settings, override_settings
from core.errorlog import fingerprint, flush, recent, record, recorder_stats, shutdown
from core.errorlog.fingerprint import normalise_message
from core.errorlog.sink import insert_rows
from core.errorlog.spool import SPOOL_NAME, Spool
from core.errors import APIError, NetworkError, Severity, ValidationError
from core.redact import REDACTED
from core.store.schema import error_logs

SECRET_KEY = "sk-ant-api03-" + "Q7w8E9r0T1y2" * 6
PERSON_ID = "7f3c2a10-0000-4000-8000-00000000a001"
DB_PASSWORD = "Sup3r-S3cret-pw"


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(error_logs).order_by(error_logs.c.id))]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(error_logs)).scalar_one()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_url(database_url: str, tmp_path: Path) -> str:
    """A URL of the same engine that cannot be opened: a file where the directory should be, or a dead port."""
    if database_url.startswith("sqlite"):
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        return f"sqlite:///{blocker}/studio.db"
    return f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere"


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - we want the raised object with its traceback
        return caught


# ---- rows ---------------------------------------------------------------------------------------


def test_recorded_error_is_stored_redacted_after_flush(engine: Engine) -> None:
    """A recorded exception is in error_logs after flush(), with secrets gone from message, context and trace."""
    exc = _raise(ConnectionError(f"refused postgresql://svc:{DB_PASSWORD}@db.internal:5432/app key {SECRET_KEY}"))
    with acting_as(Actor(user_id=PERSON_ID, role=Role.ANALYST)):  # the row is the acting person's
        error_id = record(
            exc, component="generation", request_id="req_abc123", operation_id="batch-1", attempt=2,
            session_id="sess-1",
            context={"api_key": SECRET_KEY, "headers": {"Authorization": "Bearer abcdefghijklmnop"},
                     "note": f"password={DB_PASSWORD}", "turns": 6},
        )
    assert error_id is not None and len(error_id) == 32
    assert flush(30)
    [row] = _rows(engine)
    assert row["error_id"] == error_id
    assert (row["error_type"], row["error_code"], row["severity"]) == ("network", "connection_error", "warn")
    assert (row["component"], row["request_id"], row["operation_id"], row["attempt"]) == (
        "generation", "req_abc123", "batch-1", 2)
    assert row["user_id"] == PERSON_ID and row["session_id"] == "sess-1"
    assert row["environment"] == "test" and row["is_recoverable"] is True and row["recovery_action"] == "retry"
    assert row["recovered"] is False and row["resolved"] is False
    stored = f"{row['message']} {row['context']} {row['stack_trace']}"
    assert SECRET_KEY not in stored and DB_PASSWORD not in stored and "abcdefghijklmnop" not in stored
    assert row["context"]["api_key"] == REDACTED
    assert row["context"]["headers"] == {"Authorization": REDACTED}
    assert row["context"]["turns"] == 6
    assert "svc:[REDACTED]@db.internal" in row["message"]
    assert "Traceback" in row["stack_trace"] and REDACTED in row["stack_trace"]
    assert row["created_at"].tzinfo is not None


def test_error_that_was_never_raised_has_no_stack_trace(engine: Engine) -> None:
    """Only a real (raised) exception carries a stack trace; a constructed AppError stores none."""
    record(ValidationError("count must be between 1 and 1000", field="count"), component="batches")
    assert flush(30)
    [row] = _rows(engine)
    assert row["stack_trace"] is None
    assert row["error_type"] == "validation" and row["context"]["field"] == "count"


def test_fingerprint_groups_messages_that_differ_only_in_ids(engine: Engine) -> None:
    """Two failures differing only in numbers, uuids, hex ids and request ids share a fingerprint."""
    first = APIError("Overloaded (529) for req_011CSHoEeqs5C35K2UUqR7Fy after 3 tries, item 17 "
                     "batch 123e4567-e89b-12d3-a456-426614174000 commit 9f86d081884c", code="overloaded")
    second = APIError("Overloaded (529) for req_022XYZabcdefghij012345 after 4 tries, item 912 "
                      "batch 00000000-1111-2222-3333-444444444444 commit 0a1b2c3d4e5f", code="overloaded")
    other = APIError("Authentication failed for key", code="authentication_failed")
    for err in (first, second, other):
        record(err, component="client")
    assert flush(30)
    fps = [row["fingerprint"] for row in _rows(engine)]
    assert fps[0] == fps[1] != fps[2]
    assert len(fps[0]) == 16


def test_fingerprint_depends_on_component_and_code() -> None:
    """The same message from another component or with another code is another group."""
    base = fingerprint("api", "overloaded", "client", "Overloaded 529")
    assert base == fingerprint("api", "overloaded", "client", "Overloaded 503")
    assert base != fingerprint("api", "overloaded", "worker", "Overloaded 529")
    assert base != fingerprint("api", "rate_limited", "client", "Overloaded 529")


def test_normalise_message_replaces_variable_parts() -> None:
    """Quoted strings, request ids, uuids, hex ids and numbers become placeholders."""
    text = normalise_message("User 'bob' req_011CSHoEeqs5 id 123e4567-e89b-12d3-a456-426614174000 sha deadbeef42 took 1.5s")
    assert text == "User <str> <id> id <uuid> sha <hex> took <n>s"


# ---- outages ------------------------------------------------------------------------------------


def test_spool_keeps_every_error_while_the_store_is_down_and_replays_it_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Errors recorded during an outage are spooled, then stored exactly once when the store is back."""
    ids = [record(NetworkError(f"before outage {i}"), component="test") for i in range(5)]
    assert flush(30)
    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    ids += [record(NetworkError(f"during outage {i}"), component="test") for i in range(20)]
    assert not flush(30)  # not in the store yet
    stats = recorder_stats()
    assert stats["spooled"] == 20 and stats["spool_pending"]
    spool_dir = Path(get_settings().data_dir)
    assert Spool(spool_dir).has_pending()
    spooled_text = "".join(p.read_text() for p in Spool(spool_dir).pending_files())
    assert "during outage 19" in spooled_text
    assert _count(engine) == 5

    override_settings(database_url=database_url)
    ids += [record(NetworkError(f"after outage {i}"), component="test") for i in range(5)]
    assert flush(30)
    stored = [row["error_id"] for row in _rows(engine)]
    assert sorted(stored) == sorted(ids)  # every one, exactly once
    assert len(set(stored)) == 30
    assert not Spool(spool_dir).has_pending()
    assert recorder_stats()["replayed"] == 20


def test_replaying_the_same_spool_twice_does_not_duplicate(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """A spool replayed again (crash after commit, before delete) adds only rows not yet stored."""
    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    ids = [record(APIError(f"outage {i}", code="server_error"), component="test") for i in range(10)]
    assert not flush(30)
    spool_dir = Path(get_settings().data_dir)
    [spool_file] = Spool(spool_dir).pending_files()
    backup = tmp_path / "spool-copy.jsonl"
    shutil.copy(spool_file, backup)

    override_settings(database_url=database_url)
    assert flush(30)
    assert _count(engine) == 10

    # the same rows again, plus one the store has never seen, as if a replay had been cut short
    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    extra = record(APIError("one more", code="server_error"), component="test")
    assert not flush(30)
    with (spool_dir / SPOOL_NAME).open("a", encoding="utf-8") as fh:
        fh.write(backup.read_text())
    override_settings(database_url=database_url)
    assert flush(30)
    stored = [row["error_id"] for row in _rows(engine)]
    assert sorted(stored) == sorted([*ids, extra])


def test_writer_replays_the_spool_by_itself_when_the_store_returns(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Without any flush(), the writer retries the store after log_spool_retry_s and empties the spool."""
    override_settings(log_spool_retry_s=0.05, log_writer_interval_s=0.05)
    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    ids = [record(APIError(f"outage {i}", code="server_error"), component="test") for i in range(3)]
    deadline = time.monotonic() + 30
    while recorder_stats()["spooled"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder_stats()["spooled"] == 3
    override_settings(database_url=database_url)
    while _count(engine) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(row["error_id"] for row in _rows(engine)) == sorted(ids)


def test_rows_that_can_be_neither_stored_nor_spooled_are_reported_lost(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Store down and the data dir unwritable: flush() is falsy and counts the rows lost, once; the counter keeps them."""
    blocker = tmp_path / "data-is-a-file"
    blocker.write_text("")
    override_settings(database_url=_unreachable_url(database_url, tmp_path), data_dir=str(blocker))
    for i in range(3):
        record(NetworkError(f"nowhere to go {i}"), component="test")
    flushed = flush(30)
    assert not flushed and flushed.lost == 3
    assert recorder_stats()["lost"] == 3 and recorder_stats()["spooled"] == 0
    assert flush(30).lost == 0  # reported once, not at every flush

    override_settings(database_url=database_url, data_dir=str(tmp_path / "data"))
    record(NetworkError("back again"), component="test")
    flushed = flush(30)
    assert flushed and flushed.lost == 0
    assert _count(engine) == 1 and recorder_stats()["lost"] == 3


def test_torn_spool_line_is_skipped_not_fatal(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """A half-written spool line (a crash mid-append) is counted as rejected; the other rows still land."""
    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    error_id = record(APIError("kept", code="server_error"), component="test")
    assert not flush(30)
    spool_path = Path(get_settings().data_dir) / SPOOL_NAME
    with spool_path.open("a", encoding="utf-8") as fh:
        fh.write('{"error_id": "torn", "created_at": "2026-')
    override_settings(database_url=database_url)
    assert flush(30)
    assert [row["error_id"] for row in _rows(engine)] == [error_id]
    assert recorder_stats()["rejected"] == 1


def test_record_never_raises_with_a_broken_store_or_bad_arguments(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """record() returns normally for odd arguments and a dead store; the rows still arrive later."""

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class BadStr(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    override_settings(database_url=_unreachable_url(database_url, tmp_path))
    results = [
        record("not an exception", component="test"),  # type: ignore[arg-type]
        record(None, component="test"),  # type: ignore[arg-type]
        record(BadStr(), component="test"),
        record(ValueError("x"), component="c" * 500, context={"obj": Unprintable(), "n": float("nan")},
               attempt="not a number", severity="bogus", request_id="r" * 1000),  # type: ignore[arg-type]
        record(ValueError("list context"), component="test", context=[1, 2, 3]),  # type: ignore[arg-type]
        record(ValueError("huge"), component="test", context={"blob": "x" * 1_000_000, "nul": "a\x00b"}),
        record(ValueError("deep"), component="test", context={"a": {"b": {"c": {"d": {"e": {"f": {"g": {
            "h": {"i": {"j": 1}}}}}}}}}}),
    ]
    assert all(r is not None for r in results)
    assert not flush(30)
    override_settings(database_url=database_url)
    assert flush(30)
    rows = {row["error_id"]: row for row in _rows(engine)}
    assert set(rows) == set(results)
    odd = rows[results[3]]
    assert len(odd["component"]) == 64 and len(odd["request_id"]) == 128
    assert odd["attempt"] is None and odd["severity"] == "error"
    assert odd["context"]["n"] == "nan" and "unprintable" in odd["context"]["obj"]
    huge = rows[results[5]]["context"]
    assert huge["_truncated"] is True and len(huge["_preview"]) < get_settings().log_context_max_chars + 100
    assert rows[results[0]]["error_code"] == "not_an_exception"
    assert rows[results[0]]["context"]["recorded_value"] == "not an exception"


def test_full_queue_drops_debug_and_info_first(engine: Engine) -> None:
    """When the queue is full a warning evicts an info row; further info rows are dropped and counted."""
    override_settings(log_queue_max=5, log_writer_interval_s=60, log_writer_batch_size=1000)
    infos = [record(ValidationError(f"info {i}"), component="test") for i in range(5)]
    warn = record(NetworkError("a warning"), component="test")
    late_info = record(ValidationError("late info"), component="test")
    assert all(infos) and warn is not None and late_info is None
    assert recorder_stats()["dropped"] == 2
    assert flush(30)
    stored = {row["error_id"] for row in _rows(engine)}
    assert stored == {*infos[1:], warn}


# ---- concurrency, sampling, ring ------------------------------------------------------------------


def test_eight_threads_recording_concurrently_lose_nothing(engine: Engine) -> None:
    """8 threads x 500 records each: every error_id is stored exactly once."""
    ids: list[list[str | None]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(500):
            ids[n].append(record(APIError(f"thread {n} item {i}", code="server_error"), component=f"t{n}",
                                 attempt=i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [i for chunk in ids for i in chunk]
    assert None not in expected and len(set(expected)) == 4000
    assert flush(60)
    with engine.connect() as conn:
        stored = conn.execute(select(error_logs.c.error_id)).scalars().all()
    assert len(stored) == 4000 and set(stored) == set(expected)
    assert recorder_stats()["written"] == 4000


def test_a_deep_queue_is_written_in_big_transactions_each_row_once(engine: Engine) -> None:
    """A queue far deeper than the batch size is stored in transactions of up to the max batch: no row lost or doubled."""
    override_settings(log_writer_batch_size=7, log_writer_max_batch_rows=300, log_writer_interval_s=60)
    ids = [record(APIError(f"deep {i}", code="server_error"), component="deep", attempt=i) for i in range(1000)]
    assert None not in ids and len(set(ids)) == 1000
    assert flush(60)
    rows = _rows(engine)
    assert sorted(row["error_id"] for row in rows) == sorted(ids)
    assert recorder_stats()["written"] == 1000
    assert recorder_stats()["busy_s"] > 0  # the benchmark's writer rate is rows over this time
    # every row carries the column defaults the bulk path fills in itself
    assert all(row["resolved"] is False for row in rows)


def test_writer_waits_out_a_burst_but_never_longer_than_the_linger_cap(engine: Engine) -> None:
    """record() calls that never pause hold the writer back for log_writer_max_linger_s at most: rows are
    stored while the stream is still running, and flush() gets everything."""
    override_settings(log_writer_linger_ms=50, log_writer_max_linger_s=0.1, log_writer_interval_s=0.05,
                      log_writer_batch_size=10)
    stop = threading.Event()

    def stream() -> None:
        i = 0
        while not stop.is_set():
            record(APIError(f"stream {i}", code="server_error"), component="stream")
            i += 1
            time.sleep(0.001)  # far shorter than the 50 ms gap that would end the burst

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while recorder_stats()["written"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        written_while_streaming = recorder_stats()["written"]
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join()
    assert written_while_streaming > 0
    assert flush(30)
    stats = recorder_stats()
    assert stats["dropped"] == 0 and _count(engine) == stats["written"]


def test_insert_rows_fills_defaults_for_rows_with_different_keys(engine: Engine) -> None:
    """Rows that do not share one set of keys are still stored whole, missing columns taking their defaults."""
    now = datetime.now(UTC)
    base = {"created_at": now, "error_type": "api", "error_code": "boom", "severity": "error", "message": "m",
            "component": "sink", "fingerprint": "f" * 16, "is_recoverable": True, "recovered": False}
    rows = [{**base, "error_id": "a" * 32}, {**base, "error_id": "b" * 32, "resolved": True, "attempt": 3}]
    insert_rows(engine, rows, 10)
    stored = {row["error_id"]: row for row in _rows(engine)}
    assert (stored["a" * 32]["resolved"], stored["a" * 32]["attempt"]) == (False, None)
    assert (stored["b" * 32]["resolved"], stored["b" * 32]["attempt"]) == (True, 3)


def test_error_ids_are_time_ordered_uuid7(engine: Engine) -> None:
    """Ids are UUIDv7 hex: later records sort after earlier ones, so the unique index grows at its end."""
    first = record(APIError("first"), component="test")
    time.sleep(0.002)
    second = record(APIError("second"), component="test")
    assert first is not None and second is not None
    assert uuid.UUID(first).version == 7 and uuid.UUID(first).variant == uuid.RFC_4122
    assert len(first) == 32 and first < second
    assert flush(30)


def test_sampling_drops_debug_and_info_but_never_warnings(engine: Engine) -> None:
    """At sample rate 0, info and debug rows are not recorded; warn, error and critical always are."""
    override_settings(log_sample_rate_info=0.0, log_sample_rate_debug=0.0)
    assert record(ValidationError("bad count"), component="test") is None  # info by default
    assert record(ValueError("chatty"), component="test", severity="debug") is None
    kept = [
        record(NetworkError("slow"), component="test"),
        record(ValueError("boom"), component="test"),
        record(ValueError("fatal"), component="test", severity="critical"),
        record(ValidationError("forced up"), component="test", severity=Severity.WARN.value),
    ]
    assert None not in kept
    assert flush(30)
    assert {row["severity"] for row in _rows(engine)} == {"warn", "error", "critical"}
    assert _count(engine) == 4
    assert recorder_stats()["sampled_out"] == 2


def test_info_rows_are_kept_at_sample_rate_one(engine: Engine) -> None:
    """At sample rate 1, info rows are all recorded."""
    override_settings(log_sample_rate_info=1.0)
    ids = [record(ValidationError(f"info {i}"), component="test") for i in range(20)]
    assert None not in ids
    assert flush(30)
    assert _count(engine) == 20


def test_recent_returns_the_newest_redacted_rows_first(engine: Engine) -> None:
    """The in-memory ring holds the last log_ring_size rows, newest first, already redacted."""
    override_settings(log_ring_size=3)
    shutdown()  # the ring size is read when the recorder starts
    for i in range(5):
        record(APIError(f"failure {i} password=hunter{i}", code="server_error"), component="ring")
    assert flush(30)
    rows = recent(10)
    assert [r["message"] for r in rows] == [f"failure {i} password={REDACTED}" for i in (4, 3, 2)]
    assert recent(1)[0]["message"].startswith("failure 4")


def test_shutdown_flushes_and_a_later_record_starts_again(engine: Engine) -> None:
    """shutdown() writes what is queued and stops; recording afterwards works with a new writer."""
    record(APIError("before shutdown", code="server_error"), component="test")
    assert shutdown(30)
    assert _count(engine) == 1
    assert recorder_stats()["writer_alive"] is False
    record(APIError("after shutdown", code="server_error"), component="test")
    assert flush(30)
    assert _count(engine) == 2
