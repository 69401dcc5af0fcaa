"""Start-up tuning: the heap is settled once per process; listening sockets hand out connections without Nagle's delay."""

from __future__ import annotations

import gc
import socket

import pytest

from core import runtime


@pytest.fixture
def fresh_runtime(monkeypatch):
    monkeypatch.setattr(runtime, "_settled", False)
    yield
    gc.unfreeze()  # give the test process its heap back


def test_settle_heap_freezes_what_is_alive_once(fresh_runtime):
    """The first call moves live objects to the permanent generation; later calls do nothing."""
    gc.unfreeze()
    before = gc.get_freeze_count()
    assert runtime.settle_heap() is True
    frozen = gc.get_freeze_count()
    assert frozen > before
    assert runtime.settle_heap() is False
    # frozen objects can still be freed (by threads other tests left running), never added to
    assert gc.get_freeze_count() <= frozen


def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY of the next connection `listener` accepts (0: Nagle's algorithm on)."""
    with socket.create_connection(listener.getsockname(), timeout=5):
        conn, _ = listener.accept()
        with conn:
            return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_listener_bound_as_streamlit_binds_its_own_accepts_connections_without_nagle_afterwards():
    """A socket made with family alone (protocol 0, as Streamlit's) gets TCP_NODELAY; it stays open and listening."""
    with socket.socket(family=socket.AF_INET) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert _accepted_nodelay(listener) == 0
        assert runtime.unstall_listeners() >= 1
        assert _accepted_nodelay(listener) != 0


def test_unstall_listeners_changes_nothing_where_descriptors_cannot_be_listed(tmp_path):
    """Without a descriptor folder (not Linux or macOS) nothing is touched and nothing fails."""
    assert runtime.unstall_listeners(str(tmp_path / "no-such-dir")) == 0
