"""A train/validation split with no duplicate pair across it: duplicates stay together, on one side.

Conversations are grouped first: each `duplicate_of` link joins the two conversations (also through
one that the export leaves out, as far as the actor may see), and conversations with the same
`content_hash` (the same normalised text) join too. Groups are then taken in an order seeded by
their ids (the hash of each group's smallest id), and each goes to train while train has room
for all of it, else to validation: train ends at round(ratio x n), or as close as the groups
allow when only groups bigger than the gap are left (a group is never cut). The same rows
give the same split, whichever engine and whenever it runs.

Only ids, links and hashes are read for the plan (a first, narrow pass), so the plan for a
million conversations holds a million ids, not their text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor
from core.conversations import ConversationFilter, stream_rows, visible
from core.store.schema import conversations
from core.store.tx import read_conn

__all__ = ["Side", "assign", "plan_split", "train_target"]

Side = Literal["train", "validation"]
_LOOKUP_CHUNK = 500


class _Groups:
    """Union-find over ids (and content hashes, as nodes of their own)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent.setdefault(x, x)
        while parent != x:
            grand = self.parent[parent]
            self.parent[x] = grand
            x, parent = parent, grand
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def train_target(ratio: float, n: int) -> int:
    """How many of `n` rows the train side should hold: ratio x n, halves rounded up."""
    return min(n, int(ratio * n + 0.5))


def _order_key(group: Sequence[str]) -> bytes:
    return hashlib.blake2b(min(group).encode(), digest_size=16).digest()


def assign(groups: Iterable[Sequence[str]], ratio: float) -> dict[str, Side]:
    """Each id's side, whole groups at a time, in the seeded order; train filled up to its target."""
    ordered = sorted((list(g) for g in groups), key=_order_key)
    target = train_target(ratio, sum(len(g) for g in ordered))
    sides: dict[str, Side] = {}
    train = 0
    for group in ordered:
        side: Side = "train" if train + len(group) <= target else "validation"
        train += len(group) if side == "train" else 0
        for cid in group:
            sides[cid] = side
    return sides


def plan_split(engine: Engine, flt: ConversationFilter, actor: Actor, extra: Sequence[sa.ColumnElement[bool]],
               ratio: float) -> dict[str, Side]:
    """The side of every conversation the export holds (the filter, `extra`, what the actor may export)."""
    c = conversations.c
    groups = _Groups()
    exported: list[str] = []
    for row in stream_rows(engine, flt, actor, extra=extra, columns=(c.id, c.duplicate_of, c.content_hash)):
        _link(groups, row)
        exported.append(row["id"])
    _follow_links_outside(engine, actor, groups, set(exported))
    members: dict[str, list[str]] = {}
    for cid in exported:
        members.setdefault(groups.find(cid), []).append(cid)
    return assign(members.values(), ratio)


def _link(groups: _Groups, row: Any) -> None:
    groups.find(row["id"])
    if row["duplicate_of"]:
        groups.join(row["id"], row["duplicate_of"])
    if row["content_hash"]:
        groups.join(row["id"], "hash:" + row["content_hash"])


def _follow_links_outside(engine: Engine, actor: Actor, groups: _Groups, exported: set[str]) -> None:
    """Join through conversations the export leaves out: A -> X -> B puts A and B together."""
    c = conversations.c
    seen = set(exported)
    pending = {p for p in groups.parent if not p.startswith("hash:") and p not in seen}
    while pending:
        seen |= pending
        batch, pending = sorted(pending), set()
        for i in range(0, len(batch), _LOOKUP_CHUNK):
            with read_conn(engine, actor=actor) as conn:
                rows = conn.execute(sa.select(c.id, c.duplicate_of, c.content_hash).where(
                    c.id.in_(batch[i:i + _LOOKUP_CHUNK]), visible(actor, Action.EXPORT))).mappings().all()
            for row in rows:
                _link(groups, row)
                if row["duplicate_of"] and row["duplicate_of"] not in seen:
                    pending.add(row["duplicate_of"])
