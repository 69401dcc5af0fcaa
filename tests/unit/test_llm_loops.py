"""Event loops of the model path: one SDK client per loop, and `run_sync` for sync callers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.llm.loops import run_sync, sdk_for_running_loop

URL = "http://127.0.0.1:9"  # never called: these tests only build clients


class Stop(BaseException):  # noqa: N818 - control flow, like the page's GenerationCancelled
    """What a callback raises to end a call."""


def test_a_loop_keeps_one_sdk_client_per_configuration() -> None:
    """The same settings on the same loop share a client; another key or URL gets its own."""

    async def clients() -> tuple[object, object, object]:
        return (sdk_for_running_loop("sk-a", URL, 5.0), sdk_for_running_loop("sk-a", URL, 5.0),
                sdk_for_running_loop("sk-b", URL, 5.0))

    first, again, other = run_sync(clients())
    assert first is again and other is not first


def test_each_loop_gets_its_own_sdk_client_closed_when_run_sync_ends() -> None:
    """Two run_sync calls never share a client (it is bound to its loop), and each closes the one it made."""

    async def client() -> object:
        return sdk_for_running_loop("sk-a", URL, 5.0)

    first, second = run_sync(client()), run_sync(client())
    assert first is not second
    assert first.is_closed() and second.is_closed()  # type: ignore[attr-defined]


def test_run_sync_returns_the_result_and_re_raises_what_the_call_raises() -> None:
    """A result comes back as is; an error, and a control-flow BaseException from a callback, pass through."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def stopped() -> None:
        raise Stop

    assert run_sync(answer()) == 42
    with pytest.raises(Stop):
        run_sync(stopped())


def test_run_sync_runs_the_call_on_the_callers_thread() -> None:
    """Callbacks (autosave, a page's cancel check) run on the thread that asked, not on a shared one."""
    seen: list[threading.Thread] = []

    async def note() -> None:
        seen.append(threading.current_thread())

    worker = threading.Thread(target=lambda: run_sync(note()))
    worker.start()
    worker.join(10)
    assert seen == [worker]


def test_run_sync_refuses_a_running_loop() -> None:
    """Inside a coroutine the call must be awaited; run_sync says so instead of blocking the loop."""

    async def nested() -> None:
        run_sync(asyncio.sleep(0))

    with pytest.raises(RuntimeError):
        asyncio.run(nested())
