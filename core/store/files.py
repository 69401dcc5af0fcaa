"""Data files readable by their owner only: the data dir (0700), the database and the spool (0600).

The database holds conversations and error rows, the spool error rows waiting for the store;
on a shared machine neither is anyone else's to read. Only what we create is given these
modes: an existing folder the operator chose (say /srv) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "open_private_append", "private_dir", "private_file"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create `path` and any missing parents as folders only the owner can enter."""
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made by another process in the meantime
    return path


def private_file(path: str | Path) -> Path:
    """Create the file `path` (and its folder) owner-only if it does not exist yet; leave it as is if it does.

    SQLite gives its -wal, -shm and -journal files the mode of the database file, so creating
    the database this way covers them too.
    """
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    return path


def open_private_append(path: str | Path) -> int:
    """A file descriptor appending to `path`, which is created owner-only when missing."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
