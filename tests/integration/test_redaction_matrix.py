"""Every secret of the catalogue, in five positions, is absent from the row, the CSV, the spool and the log.

One pass of the real path runs once for the module: record() while the store is down (rows go to
the spool file), then with the store back (the spool is replayed into SQLite), then the CSV export;
every error is also logged through Python's logging. Each catalogued secret is then checked in
each of its five positions in each of the four places.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from isolation import isolate_environment
from redaction_cases import LOOK_ALIKES, SECRETS

from core.config import override_settings, reload_settings
from core.errorlog import flush, record, reset_recorder
from core.errorlog.export import EXPORT_COLUMNS, export_csv
from core.errorlog.spool import Spool
from core.errors import APIError
from core.redact import REDACTED
from core.store import create_store_engine, migrate, reset_engine

POSITIONS = ("message", "context", "traceback", "chain", "payload")
log = logging.getLogger("studio.test.redaction")


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - we want the raised object with its traceback
        return caught


def _chained(text: str) -> BaseException:
    try:
        try:
            raise ConnectionError(text)
        except ConnectionError as inner:
            raise RuntimeError("the upstream call failed") from inner
    except RuntimeError as outer:
        return outer


def _noted(text: str) -> BaseException:
    exc = ValueError("see the note below")
    exc.add_note(text)  # printed in the traceback only, never in str(exc)
    return _raised(exc)


def _errors(text: str) -> Iterator[tuple[str, BaseException, dict[str, Any] | None]]:
    """(position, exception, context) placing `text` in each of the five positions."""
    yield "message", APIError(f"upstream said: {text}", code="bad_request"), None
    yield "context", _raised(ValueError("plain failure")), {"note": text, "turns": 6}
    yield "traceback", _noted(text), None
    yield "chain", _chained(text), None
    yield "payload", APIError("request rejected", code="bad_request"), {
        "request": {"method": "POST", "json": {"messages": [{"role": "user", "content": text}]},
                    "body": text.encode()}}


class _KeepLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _leaves(value: Any) -> Iterator[str]:
    """Every string inside `value` (a row field, decoded JSON), and `value` itself when it is text."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield str(value)


@dataclass
class Sinks:
    """What each place holds for one error: the texts to search."""

    row: dict[str, Any]
    texts: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Pipeline:
    ids: dict[tuple[str, str], str]
    sinks: dict[str, Sinks]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Run record -> spool -> store -> CSV (and logging) once for every secret in every position."""
    tmp = tmp_path_factory.mktemp("redaction")
    blocker = tmp / "not-a-directory"
    blocker.write_text("")
    good_url = f"sqlite:///{tmp / 'studio.db'}"
    handler = _KeepLines()
    with pytest.MonkeyPatch.context() as mp:
        isolate_environment(mp, tmp)
        reset_recorder()
        reload_settings()
        override_settings(database_url=f"sqlite:///{blocker}/studio.db")  # the store is down: rows are spooled
        reset_engine()
        logging.getLogger().addHandler(handler)
        try:
            ids: dict[tuple[str, str], str] = {}
            log_lines: dict[str, str] = {}
            for name, text, _secret, _kept in SECRETS:
                for position, exc, context in _errors(text):
                    log.error("while handling the %s of %s: %s", position, name, exc, exc_info=exc)
                    error_id = record(exc, component="redaction-test", context=context)
                    assert error_id is not None
                    ids[(name, position)] = error_id
                    log_lines[error_id] = handler.lines[-1]
            assert not flush(30)  # still in the spool (the live file, or one claimed for a replay)
            spool_lines = [line for path in Spool(tmp / "data").pending_files()
                           for line in path.read_text(encoding="utf-8").splitlines()]

            override_settings(database_url=good_url)
            reset_engine()
            engine = create_store_engine(good_url)
            migrate(engine)
            assert flush(30)  # replayed from the spool into the store
            from sqlalchemy import select

            from core.store.schema import error_logs

            with engine.connect() as conn:
                rows = {r.error_id: dict(r._mapping) for r in conn.execute(select(error_logs))}
            out = io.StringIO()
            export_csv(engine, None, out)
            engine.dispose()
        finally:
            logging.getLogger().removeHandler(handler)
            reset_recorder()
            reset_engine()
    reload_settings()

    sinks = {error_id: Sinks(row=row, texts={"row": list(_leaves(row))}) for error_id, row in rows.items()}
    for line in spool_lines:
        parsed = json.loads(line)
        sinks[parsed["error_id"]].texts["spool"] = [line, *_leaves(parsed)]
    reader = csv.reader(io.StringIO(out.getvalue()))
    header = next(reader)
    assert tuple(header) == EXPORT_COLUMNS
    context_at = header.index("context")
    for cells in reader:
        decoded = list(_leaves(json.loads(cells[context_at]))) if cells[context_at] else []
        sinks[cells[0]].texts["csv"] = [*cells, *decoded]
    for error_id, line in log_lines.items():
        sinks[error_id].texts["log"] = [line]
    yield Pipeline(ids=ids, sinks=sinks)


def test_the_matrix_covers_forty_five_secrets_in_five_positions_in_four_places(pipeline: Pipeline) -> None:
    """At least 45 secrets x 5 positions reached the row, the spool, the CSV and the log."""
    assert len({name for name, _ in pipeline.ids}) >= 45
    assert len(pipeline.ids) == len(SECRETS) * len(POSITIONS)
    for error_id in pipeline.ids.values():
        assert set(pipeline.sinks[error_id].texts) == {"row", "spool", "csv", "log"}


@pytest.mark.parametrize(("name", "text", "secret", "kept"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secret_is_absent_from_row_csv_spool_and_log_in_every_position(
    pipeline: Pipeline, name: str, text: str, secret: str, kept: str
) -> None:
    """The secret is gone from every place in every position, and the row says where it was."""
    for position in POSITIONS:
        sinks = pipeline.sinks[pipeline.ids[(name, position)]]
        for place, texts in sinks.texts.items():
            leaked = [t for t in texts if secret in t]
            assert not leaked, f"{name}, {position}: the secret is in the {place}: {leaked[0][:200]!r}"
        row = sinks.row
        where = {"message": row["message"], "context": json.dumps(row["context"]), "traceback": row["stack_trace"],
                 "chain": row["stack_trace"], "payload": json.dumps(row["context"])}[position]
        assert REDACTED in where, f"{name}, {position}: the text did not reach the {position}"


@pytest.fixture(scope="module")
def look_alike_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each look-alike recorded as a message and as a context value, stored in SQLite."""
    tmp = tmp_path_factory.mktemp("lookalikes")
    url = f"sqlite:///{tmp / 'studio.db'}"
    with pytest.MonkeyPatch.context() as mp:
        isolate_environment(mp, tmp)
        mp.setenv("DATABASE_URL", url)
        reset_recorder()
        reload_settings()
        reset_engine()
        try:
            ids = {text: record(APIError(text, code="bad_request"), component="redaction-test",
                                context={"note": text}) for text in LOOK_ALIKES}
            engine = create_store_engine(url)
            migrate(engine)
            assert flush(30)
            from sqlalchemy import select

            from core.store.schema import error_logs

            with engine.connect() as conn:
                rows = {r.error_id: dict(r._mapping) for r in conn.execute(select(error_logs))}
            engine.dispose()
        finally:
            reset_recorder()
            reset_engine()
    reload_settings()
    return {text: rows[error_id] for text, error_id in ids.items()}


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alike_survives_the_row_unchanged(look_alike_rows: dict[str, dict[str, Any]], text: str) -> None:
    """Ordinary text that resembles a secret is stored exactly as recorded, as a message and as a context value."""
    row = look_alike_rows[text]
    assert row["message"] == text
    assert row["context"]["note"] == text
