"""Data files are created readable by their owner only: the data dir 0700, database, WAL, SHM and spool 0600."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from core.config import get_settings, override_settings
from core.errorlog import flush, record
from core.errorlog.spool import SPOOL_NAME, Spool
from core.errors import APIError
from core.store import get_engine, migrate


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_sqlite_database_and_its_wal_and_shm_are_owner_only(tmp_path):
    """A fresh data dir, the database and its -wal and -shm files are created 0700 / 0600 under umask 022."""
    old = os.umask(0o022)
    try:
        data = Path(get_settings().data_dir)
        assert not data.exists()
        engine = get_engine()
        migrate(engine)
        with engine.connect() as conn:  # a connection keeps the -wal and -shm files in place
            conn.execute(sa.text("SELECT count(*) FROM error_logs")).scalar_one()
            names = {p.name: _mode(p) for p in data.iterdir()}
        assert _mode(data) == 0o700
        assert names["studio.db"] == names["studio.db-wal"] == names["studio.db-shm"] == 0o600, names
    finally:
        os.umask(old)


def test_the_spool_file_and_its_folder_are_owner_only(tmp_path):
    """Rows spooled while the store is down land in a 0600 file inside a 0700 folder."""
    old = os.umask(0o022)
    try:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        override_settings(database_url=f"sqlite:///{blocker}/studio.db")
        assert record(APIError("boom", code="server_error"), component="test") is not None
        assert not flush(30)
        data = Path(get_settings().data_dir)
        spooled = Spool(data).pending_files()
        assert spooled and all(_mode(p) == 0o600 for p in spooled)
        assert _mode(data) == 0o700
        direct = Spool(tmp_path / "other" / "spool")
        direct.append([{"error_id": "e1", "created_at": datetime.now(UTC)}])
        assert _mode(direct.path) == 0o600 and direct.path.name == SPOOL_NAME
        assert _mode(tmp_path / "other" / "spool") == 0o700 and _mode(tmp_path / "other") == 0o700
    finally:
        os.umask(old)


def test_an_existing_folder_chosen_by_the_operator_keeps_its_mode(tmp_path):
    """Only what the app creates is made private: the operator's existing folder is left as it was."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    override_settings(database_url=f"sqlite:///{shared / 'studio.db'}")
    migrate(get_engine())
    assert _mode(shared) == 0o755 and _mode(shared / "studio.db") == 0o600
