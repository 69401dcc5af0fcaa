"""The optional LLM judge for a batch's conversations, in both modes: asked per batch, else per template version.

Online mode judges each reply before its commit; Message Batches mode judges each succeeded result
before its commit, with an online call (the judge is one short request per conversation, priced as
judge cost). Never fails an item: the judge's own failures come back as a "failed" judgement, and a
store that cannot say whether a judge is wanted is recorded and the item goes unjudged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from core.batches import service
from core.errorlog import record
from core.quality import Judgement, ajudge, judge_wanted

__all__ = ["BatchJudge"]


class BatchJudge:
    """Judges one batch's conversations when the batch or the item's template version asks for it."""

    def __init__(self, engine: Engine, batch_id: str, client: Any) -> None:
        self.engine = engine
        self.batch_id = batch_id
        self.client = client
        self._asked: bool | None = None  # the batch asked for the judge (read at its first conversation)

    async def __call__(self, item_index: int, params: Mapping[str, Any],
                       turns: Sequence[Mapping[str, Any]]) -> Judgement | None:
        """The judgement of these turns, or None when no judge is wanted (or the store cannot say)."""
        try:
            if self._asked is None:
                self._asked = await asyncio.to_thread(service.judge_asked, self.engine, self.batch_id)
            wanted = self._asked or await asyncio.to_thread(judge_wanted, params, self.engine)
        except Exception as exc:  # noqa: BLE001 - the judge is optional; the conversation is saved without it
            record(exc, component="batch_worker", operation_id=self.batch_id,
                   context={"item_index": item_index, "step": "judge"})
            return None
        if not wanted:
            return None
        return await ajudge(turns, params, client=self.client, operation_id=self.batch_id)
