"""Event loops for the one (async) model-call path: an SDK client per loop, and `run_sync` for sync callers.

The model is called only through coroutines (`ClaudeClient.acomplete`,
`agenerate_conversation`). Code that is not async (a draft generating on a page's thread,
the CLI, a benchmark) runs such a call with `run_sync(coroutine)`.

Why one SDK client per loop: an `AsyncAnthropic` holds an httpx connection pool whose
connections belong to the event loop they were opened on; used from another loop they fail
or hang. The batch worker runs a long-lived loop of its own (in a thread of the app or its
own process), and each `run_sync` call runs a short one, so `sdk_for_running_loop` keeps one
client per loop and configuration.

Why `run_sync` runs a new loop in the caller's thread, closed after the call, rather than
submitting to one shared loop in a background thread: the caller's callbacks (`on_delta`: a
draft's autosave to the store, a page's cancel check that raises inside the stream) then run
on the caller's thread, as they would in a sync call, and a callback that blocks (a store
write retried through an outage) holds up only its own call, never another page's. A cancel
raised by a callback, or Ctrl-C, ends the call the same way: the coroutine unwinds, its stream
is closed, and the loop's SDK clients are closed before `run_sync` re-raises.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

import anthropic

__all__ = ["close_running_loop_sdks", "run_sync", "sdk_for_running_loop"]

T = TypeVar("T")

_SdkKey = tuple[str, str | None, float]  # api key, base URL, timeout

_lock = threading.Lock()
_sdks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_SdkKey, anthropic.AsyncAnthropic]] = (
    weakref.WeakKeyDictionary())


def sdk_for_running_loop(api_key: str, base_url: str | None, timeout: float) -> anthropic.AsyncAnthropic:
    """The async SDK client for this configuration on the running loop, made on first use (SDK retries off)."""
    loop = asyncio.get_running_loop()
    key = (api_key, base_url, timeout)
    with _lock:
        made = _sdks.setdefault(loop, {})
        sdk = made.get(key)
        if sdk is None:
            sdk = made[key] = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                                       timeout=timeout)
        return sdk


async def close_running_loop_sdks() -> None:
    """Close and forget the SDK clients made on the running loop (before the loop itself closes)."""
    with _lock:
        made = _sdks.pop(asyncio.get_running_loop(), {})
    for sdk in made.values():
        await sdk.close()


def run_sync(call: Coroutine[Any, Any, T]) -> T:
    """Run `call` to its end on a new event loop in this thread and return its result (see the module doc).

    Raises what `call` raises; RuntimeError inside a running loop, where the call is awaited instead.
    """
    if _loop_running():
        call.close()
        raise RuntimeError("run_sync() was called inside a running event loop: await the call instead")

    async def _run() -> T:
        try:
            return await call
        finally:
            await close_running_loop_sdks()

    return asyncio.run(_run())


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
