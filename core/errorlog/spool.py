"""The spool: error rows kept on disk (JSON lines) while the store is unavailable.

Several processes (the app, `python -m core worker`) may share one data dir. Each appends to
the spool file under an exclusive lock, and a replayer first renames the file to a claimed name
of its own, so rows appended later start a new file and no row is read by two replayers or lost
between read and delete. Replayed rows are inserted ignoring duplicate error ids, so a replay
cut short and repeated never stores a row twice.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from core.store.files import open_private_append, private_dir

try:  # POSIX; elsewhere one process per data dir is assumed
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SPOOL_NAME", "Spool"]

SPOOL_NAME = "errorlog-spool.jsonl"
_CLAIMED_PREFIX = "errorlog-spool.replaying."
_DATETIME_FIELDS = ("created_at", "resolved_at")


@contextmanager
def _locked(fh: IO[Any]) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _encode(row: dict[str, Any]) -> str:
    out = dict(row)
    for name in _DATETIME_FIELDS:
        value = out.get(name)
        if isinstance(value, datetime):
            out[name] = value.isoformat()
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _decode(line: str) -> dict[str, Any]:
    row = json.loads(line)
    if not isinstance(row, dict) or not isinstance(row.get("error_id"), str):
        raise ValueError("not an error row")
    for name in _DATETIME_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = datetime.fromisoformat(value)
    return row


class Spool:
    """Append rows while the store is down; hand them back, once, when it is up."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / SPOOL_NAME

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Durably append `rows` (fsync'd). Raises OSError if the disk refuses."""
        if not rows:
            return
        payload = "".join(_encode(row) + "\n" for row in rows)
        private_dir(self.directory)
        while True:
            # error rows are private: the spool is created readable by its owner only
            with os.fdopen(open_private_append(self.path), "a", encoding="utf-8") as fh, _locked(fh):
                # a replayer may have claimed (renamed) the file between our open and our lock;
                # then this handle points at the claimed file and we must append to a fresh one
                try:
                    same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    continue
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
                return

    def pending_files(self) -> list[Path]:
        """Spool files waiting for replay: the live one and any claimed but not finished."""
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob(_CLAIMED_PREFIX + "*"))
        if self.path.exists():
            files.append(self.path)
        return files

    def has_pending(self) -> bool:
        return bool(self.pending_files())

    def claim(self) -> list[Path]:
        """Rename the live spool to a name of our own; return every file now ready to replay.

        Claimed files left by a replay that failed (store down again) are returned too; their
        rows are replayed ignoring duplicates, so taking them over is safe.
        """
        if self.path.exists():
            claimed = self.directory / f"{_CLAIMED_PREFIX}{os.getpid()}.{uuid.uuid4().hex[:8]}.jsonl"
            try:
                os.replace(self.path, claimed)
            except FileNotFoundError:
                pass  # another process claimed it first; its rows are in its claimed file
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(_CLAIMED_PREFIX + "*"))

    @staticmethod
    def read(path: Path) -> tuple[list[dict[str, Any]], int]:
        """The rows of a claimed file, and how many lines were unreadable (torn by a crash)."""
        rows: list[dict[str, Any]] = []
        bad = 0
        with path.open("r", encoding="utf-8", errors="replace") as fh, _locked(fh):
            # the lock waits out an append that opened the file just before it was claimed
            for line in fh:
                if not line.strip():
                    continue
                try:
                    rows.append(_decode(line))
                except (ValueError, TypeError):
                    bad += 1
        return rows, bad

    @staticmethod
    def done(path: Path) -> None:
        """Remove a claimed file whose rows are all in the store."""
        path.unlink(missing_ok=True)
