"""Start-up tuning: the heap is settled once per process."""

from __future__ import annotations

import gc

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
