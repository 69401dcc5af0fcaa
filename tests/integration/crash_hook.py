"""Harness: run `python -m core ...` with a crash injected at the worker's model boundary.

The crash is the test's doing, not a setting of the app: the test starts

    python -c "import crash_hook; crash_hook.main()" [--after-replies K] [--poison-persona P] worker --once ...

with this folder on PYTHONPATH and the worktree as cwd (so `core` is the worktree's). It
wraps `agenerate_conversation`, the call a worker makes for each item's reply, so the process
dies with os._exit(137) right after the model answered and before the item's commit: after
its K-th reply, or on the reply to an item whose persona is P (an item that kills every
worker that takes it). Then the real CLI runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

CRASH_EXIT = 137


def install(*, after_replies: int | None = None, poison_persona: str | None = None) -> None:
    """Make this process exit at once after its k-th model reply, or on the reply for persona P."""
    import core.batches.worker as worker
    import core.generation.service as generation

    real = generation.agenerate_conversation
    replies = 0

    async def crashing(params: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal replies
        result = await real(params, *args, **kwargs)
        replies += 1
        if (after_replies and replies >= after_replies) or (poison_persona and params.persona == poison_persona):
            os._exit(CRASH_EXIT)  # no cleanup, no commit: what a kill -9 at this moment leaves behind
        return result

    generation.agenerate_conversation = crashing
    if hasattr(worker, "agenerate_conversation"):  # in case the worker binds the name at import
        worker.agenerate_conversation = crashing


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--after-replies", type=int)
    parser.add_argument("--poison-persona")
    hook, cli_args = parser.parse_known_args(sys.argv[1:])
    install(after_replies=hook.after_replies, poison_persona=hook.poison_persona)
    from core.__main__ import main as cli

    sys.exit(cli(cli_args))
