"""Harness: run `python -m core ...` with a crash injected at the worker's model boundary.

The crash is the test's doing, not a setting of the app: the test starts

    python -c "import crash_hook; crash_hook.main()" [--after-replies K] [--poison-persona P]
        [--remote-step before_create|after_create|polling|results] worker --once ...

with this folder on PYTHONPATH and the worktree as cwd (so `core` is the worktree's). It
wraps `agenerate_conversation`, the call a worker makes for each item's reply, so the process
dies with os._exit(137) right after the model answered and before the item's commit: after
its K-th reply, or on the reply to an item whose persona is P (an item that kills every
worker that takes it); or, for a Message Batches batch, at one step of its remote batches
(`--remote-step`, see install_remote). Then the real CLI runs.
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


# the moments of a Message Batches batch a worker may die at (core.batches.message_batches' remote calls)
REMOTE_STEPS = ("before_create", "after_create", "polling", "results")


def install_remote(step: str) -> None:
    """Make this process exit at once at `step` of a Message Batches batch.

    before_create: its submission row is written, create not called; after_create: the remote batch
    exists, its id not stored; polling: at the second retrieve; results: after the first chunk of
    results is committed and its resume point saved.
    """
    import core.batches.message_batches as mb

    if step == "before_create":
        async def before_create(*args: Any) -> Any:
            os._exit(CRASH_EXIT)

        mb._remote_create = before_create
    elif step == "after_create":
        real_create = mb._remote_create

        async def after_create(*args: Any) -> Any:
            await real_create(*args)
            os._exit(CRASH_EXIT)

        mb._remote_create = after_create
    elif step == "polling":
        real_retrieve, polls = mb._remote_retrieve, 0

        async def polling(*args: Any) -> Any:
            nonlocal polls
            polls += 1
            if polls >= 2:
                os._exit(CRASH_EXIT)
            return await real_retrieve(*args)

        mb._remote_retrieve = polling
    elif step == "results":
        real_settle = mb._settle_chunk

        def results(*args: Any) -> Any:
            real_settle(*args)
            os._exit(CRASH_EXIT)

        mb._settle_chunk = results
    else:
        raise SystemExit(f"unknown step {step!r}; one of {REMOTE_STEPS}")


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--after-replies", type=int)
    parser.add_argument("--poison-persona")
    parser.add_argument("--remote-step", choices=REMOTE_STEPS)
    hook, cli_args = parser.parse_known_args(sys.argv[1:])
    install(after_replies=hook.after_replies, poison_persona=hook.poison_persona)
    if hook.remote_step:
        install_remote(hook.remote_step)
    from core.__main__ import main as cli

    sys.exit(cli(cli_args))
