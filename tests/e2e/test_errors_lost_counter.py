"""The Errors page says how many error rows this process lost (neither stored nor spooled)."""

from __future__ import annotations

from core.config import get_settings, override_settings
from core.errorlog import flush, record
from core.errors import NetworkError


def test_rows_lost_while_store_and_disk_were_down_show_on_the_errors_page(open_page, database_url, tmp_path):
    """After 3 rows could be written neither to the database nor to the spool, the Rows lost card reads 3."""
    at = open_page("errors")
    assert [m.value for m in at.metric if m.label == "Rows lost"] == ["0"]

    blocker = tmp_path / "data-is-a-file"
    blocker.write_text("")
    good = {"database_url": database_url, "data_dir": get_settings().data_dir}
    unreachable = f"sqlite:///{blocker}/studio.db" if database_url.startswith("sqlite") else \
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    override_settings(database_url=unreachable, data_dir=str(blocker))
    for i in range(3):
        record(NetworkError(f"lost {i}"), component="test")
    assert flush(30).lost == 3
    override_settings(**good)

    at = open_page("errors")
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Rows lost"] == ["3"]
