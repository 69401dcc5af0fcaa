"""The process's near-duplicate index, loaded from the store once and kept up to date.

Each process (the app, each `python -m core worker`) holds one `StoreIndex` per database: the
signatures of every accepted conversation, read in chunks of settings.quality_index_chunk_rows
the first time a conversation is checked, and of the batches it commits conversations for
(the most recent few; an older batch's rows that are not accepted are dropped again). What
this process commits is added as it is committed; what other processes commit or decide is
caught up at most every settings.quality_index_refresh_s:
- new conversations, by `created_at` from the last catch-up less settings.quality_index_overlap_s
  (a transaction stamped earlier may commit later; rows already held are skipped);
- review decisions, by their increasing id, which move a conversation into the accepted set
  or out of it.
The store is read as the system: the accepted set is everybody's. A person sees the id of
what their conversation duplicates, and the shared passage, which is their own text.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth.actor import system_actor
from core.config import get_settings
from core.process_wide import ProcessWide
from core.quality.fingerprint import signature_from_bytes
from core.quality.index import NearDuplicateIndex
from core.store.schema import conversations, review_decisions, utcnow
from core.store.tx import read_conn

__all__ = ["StoreIndex", "reset_shared_indexes", "shared_index"]

_SYSTEM = system_actor()
_TRACKED_BATCHES = 4  # batches whose every row is held; a worker works one or two at a time
_c = conversations.c
_COLUMNS = (_c.id, _c.minhash, _c.review_status, _c.batch_id)


class StoreIndex:
    """A NearDuplicateIndex over the store's accepted conversations and a few batches' conversations."""

    def __init__(self, engine: Engine) -> None:
        s = get_settings()
        self.engine = engine
        self.index = NearDuplicateIndex(num_perm=s.quality_minhash_perms, threshold=s.quality_near_duplicate_threshold)
        self._lock = threading.Lock()
        self._loaded = False
        self._batches: OrderedDict[str, None] = OrderedDict()
        self._since: datetime | None = None
        self._last_decision = 0
        self._caught_up = 0.0

    def _add_rows(self, rows: Iterable[Any]) -> int:
        width = self.index.num_perm * 4  # bytes of a signature signed under these settings
        # one signed under other settings is left out: rechecking the rows signs them again
        kept = [row for row in rows if row.minhash is not None and len(row.minhash) == width]
        if not kept:
            return 0
        sigs = signature_from_bytes(b"".join(row.minhash for row in kept)).reshape(len(kept), -1)
        return self.index.add_many([row.id for row in kept], sigs,
                                   accepted=[row.review_status == "accepted" for row in kept],
                                   batch_ids=[row.batch_id for row in kept])

    def _load_chunks(self, where: sa.ColumnElement[bool], *order: sa.ColumnElement[Any]) -> None:
        """Rows matching `where`, read in keyset chunks along `order` (unique together, the tail of an index).

        Each chunk reads only its own rows from the index, so loading is linear in the rows loaded.
        """
        chunk = get_settings().quality_index_chunk_rows
        after: tuple[Any, ...] | None = None
        keys = [c.label(f"k{i}") for i, c in enumerate(order)]
        while True:
            query = sa.select(*_COLUMNS, *keys).where(where, _c.minhash.is_not(None))
            if after is not None:
                query = query.where(sa.tuple_(*order) > sa.tuple_(*after))
            with read_conn(self.engine, actor=_SYSTEM) as conn:
                rows = conn.execute(query.order_by(*order).limit(chunk)).all()
            self._add_rows(rows)
            if len(rows) < chunk:
                return
            after = tuple(rows[-1][len(_COLUMNS) + i] for i in range(len(order)))

    def _load(self) -> None:
        started = utcnow()
        with read_conn(self.engine, actor=_SYSTEM) as conn:
            self._last_decision = int(conn.execute(sa.select(sa.func.max(review_decisions.c.id))).scalar() or 0)
            accepted = int(conn.execute(sa.select(sa.func.count()).select_from(conversations).where(
                _c.review_status == "accepted")).scalar_one())
        self.index.reserve(accepted + accepted // 8)  # and some room for what comes next
        # along ix_conversations_review (review_status, created_at), id breaking ties
        self._load_chunks(_c.review_status == "accepted", _c.created_at, _c.id)
        self._since, self._loaded, self._caught_up = started, True, time.monotonic()

    def _track(self, batch_id: str) -> None:
        if batch_id in self._batches:
            self._batches.move_to_end(batch_id)
            return
        self._batches[batch_id] = None
        self._load_chunks(_c.batch_id == batch_id, _c.item_index)  # along uq_conversation_batch_item
        while len(self._batches) > _TRACKED_BATCHES:
            old, _ = self._batches.popitem(last=False)
            self.index.drop_batch(old)

    def _catch_up(self) -> None:
        s = get_settings()
        started = utcnow()
        assert self._since is not None
        since = self._since - timedelta(seconds=s.quality_index_overlap_s)
        in_scope = sa.or_(_c.review_status == "accepted", _c.batch_id.in_(list(self._batches))) \
            if self._batches else _c.review_status == "accepted"
        with read_conn(self.engine, actor=_SYSTEM) as conn:
            self._add_rows(conn.execute(sa.select(*_COLUMNS).where(
                _c.created_at >= since, _c.minhash.is_not(None), in_scope)).all())
            decided = conn.execute(
                sa.select(review_decisions.c.id, *_COLUMNS).join(conversations, conversations.c.id
                                                                  == review_decisions.c.conversation_id)
                .where(review_decisions.c.id > self._last_decision).order_by(review_decisions.c.id)).all()
        for row in decided:
            if row.id not in self.index:
                if row.review_status == "accepted":
                    self._add_rows([row])
            else:
                self.index.set_accepted(row.id, row.review_status == "accepted")
        if decided:
            self._last_decision = max(int(r[0]) for r in decided)
        self._since, self._caught_up = started, time.monotonic()

    def prepare(self, batch_id: str | None = None) -> NearDuplicateIndex:
        """The index, loaded (first call), holding `batch_id`'s rows, and caught up if the interval passed."""
        with self._lock:
            if not self._loaded:
                self._load()
            elif time.monotonic() - self._caught_up >= get_settings().quality_index_refresh_s:
                self._catch_up()
            if batch_id is not None:
                self._track(batch_id)
            return self.index


_INDEXES: ProcessWide[StoreIndex] = ProcessWide()


def shared_index(engine: Engine) -> StoreIndex:
    """This process's index for the database `engine` points at (made on first use)."""
    s = get_settings()
    key = f"{engine.url.render_as_string(hide_password=True)}|{s.quality_minhash_perms}|" \
          f"{s.quality_near_duplicate_threshold}"
    index = _INDEXES.get(key, lambda: StoreIndex(engine))
    index.engine = engine  # the latest engine on that database (an older one may be disposed)
    return index


def reset_shared_indexes() -> None:
    """Forget every process index (tests: each test has its own database)."""
    _INDEXES.clear()
