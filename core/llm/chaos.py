"""Whether the chaos switch is on: the faults the app's own sandbox injects, found without loading the SDK.

The client (core.llm.client) registers the in-process sandbox it starts; before it has started
one, the sandbox it would start is the one the settings describe. A sandbox reached over
ANTHROPIC_BASE_URL is another process's and is not asked here (its answers still carry
``x-sandbox-fault``, so each error it injects says so).
"""

from __future__ import annotations

import threading

from core.config import get_settings
from core.llm.sandbox import SandboxConfig, SandboxServer

__all__ = ["describe", "faults_in_force", "use"]

_lock = threading.Lock()
_sandbox: SandboxServer | None = None


def use(sandbox: SandboxServer | None) -> None:
    """The in-process sandbox the app's client calls now (None: none)."""
    global _sandbox
    with _lock:
        _sandbox = sandbox


def describe(config: SandboxConfig) -> str | None:
    """What the faults of `config` do to calls, in a few words; None when it injects none."""
    if config.force_status is not None:
        return f"every call to the model fails with status {config.force_status}"
    rate = config.total_fault_rate()
    if rate > 0:
        return f"about {rate:.0%} of calls to the model fail on purpose"
    return None


def faults_in_force() -> str | None:
    """The chaos switch in words while it is on; None while it is off or the app calls a real service."""
    with _lock:
        sandbox = _sandbox
    if sandbox is not None:
        return describe(sandbox.config)
    if get_settings().provider != "sandbox":
        return None
    return describe(SandboxConfig.from_settings())
