"""Dataset health of a set of conversations: review states, score histogram, duplicate rate, distinct-n, coverage.

One streamed pass over the matching conversations (core.conversations.stream_rows, only the
columns it needs), so the numbers are of the same rows the list and the export show. distinct-n is
the share of an assistant turn's word n-grams (n = 1, 2; lower-cased words, n-grams inside one
turn) that are distinct over the whole set: near 1, varied answers; near 0, the model repeats
itself. Each n-gram is hashed to 64 bits and the smallest settings.dataset_health_sketch_size
hashes are kept (k minimum values): while a set has fewer distinct n-grams than that, the count is
exact; past it, it is estimated from the k-th smallest hash (about 1/sqrt(k) off), so memory stays
bounded for any size of set. Hashing and keeping the minimum run on numpy arrays, a chunk of rows
at a time.

The coverage grid counts conversations, and accepted ones, per persona x emotion x topic cell
(and per edge case and custom value), in core.templates.grid's Coverage: (conversations, accepted).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from core.auth import Action, current_actor
from core.config import get_settings
from core.conversations import ConversationFilter, stream_rows
from core.datasets.card import NOT_SCORED, SCORE_BINS, score_bin
from core.store.schema import conversations
from core.templates.grid import Coverage

__all__ = ["REVIEW_STATES", "DatasetHealth", "dataset_health", "distinct_n"]

REVIEW_STATES = ("accepted", "needs_review", "rejected", "regenerate")
_WORD = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1
_FLUSH_ROWS = 500  # rows whose word hashes are counted together (one numpy pass)


class _Distinct:
    """How many distinct values among 64-bit hashes: the k smallest kept, exact below k, estimated above."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.kept = np.empty(0, dtype=np.uint64)  # sorted, distinct, at most k
        self.total = 0
        self.saturated = False  # a value was dropped: the count is an estimate

    def add(self, hashes: np.ndarray) -> None:
        self.total += len(hashes)
        if not len(hashes):
            return
        if self.saturated:  # only a value below the k-th smallest can change what is kept
            hashes = hashes[hashes < self.kept[-1]]
        merged = np.concatenate((self.kept, hashes))
        merged.sort()
        merged = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
        if len(merged) > self.k:
            self.saturated = True
            merged = merged[: self.k]
        self.kept = merged

    @property
    def exact(self) -> bool:
        return not self.saturated

    def distinct(self) -> int:
        if not self.saturated:
            return len(self.kept)
        kth = (float(self.kept[-1]) + 1.0) / 2.0**64
        return int(round((self.k - 1) / kth))

    def ratio(self) -> float | None:
        return min(self.distinct() / self.total, 1.0) if self.total else None


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads word hashes (and combinations of them) over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Turns:
    """Word hashes of assistant turns gathered for one chunk, then counted as unigrams and in-turn bigrams."""

    def __init__(self, k: int) -> None:
        self.uni, self.bi = _Distinct(k), _Distinct(k)
        self.words: list[int] = []
        self.turn: list[int] = []
        self.turns = 0

    def add(self, text: str) -> None:
        words = _WORD.findall(text.lower())
        self.words.extend(hash(w) & _MASK64 for w in words)
        self.turn.extend([self.turns] * len(words))
        self.turns += 1

    def flush(self) -> None:
        if not self.words:
            return
        with np.errstate(over="ignore"):
            words = _mix(np.array(self.words, dtype=np.uint64))
            turn = np.array(self.turn, dtype=np.int64)
            same = turn[:-1] == turn[1:]  # a bigram never spans two turns
            pairs = _mix(words[:-1][same] * np.uint64(0x9E3779B97F4A7C15) ^ words[1:][same])
        self.uni.add(words)
        self.bi.add(pairs)
        self.words, self.turn = [], []


def distinct_n(texts: list[str], n: int) -> float | None:
    """distinct-n of `texts` (each a turn), n = 1 or 2: distinct n-grams / all n-grams; None when there are none."""
    counter = _Turns(k=1 << 62)
    for text in texts:
        counter.add(text)
    counter.flush()
    return (counter.uni if n == 1 else counter.bi).ratio()


@dataclass(frozen=True)
class DatasetHealth:
    """The health of one set: counts by review state, score bins, duplicates, distinct-1/2, coverage."""

    total: int = 0
    states: dict[str, int] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)  # SCORE_BINS in order, then NOT_SCORED
    duplicates: int = 0
    distinct_1: float | None = None
    distinct_2: float | None = None
    exact: bool = True  # distinct-n counted exactly (else estimated)
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def duplicate_rate(self) -> float | None:
        return self.duplicates / self.total if self.total else None


def dataset_health(engine: Engine, flt: ConversationFilter | None = None) -> DatasetHealth:
    """The health of the conversations `flt` matches that the actor may see."""
    actor = current_actor(engine)
    c = conversations.c
    states: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    turns = _Turns(get_settings().dataset_health_sketch_size)
    coverage = Coverage()
    total = duplicates = 0
    for row in stream_rows(engine, flt, actor, action=Action.VIEW,
                           columns=(c.params, c.review_status, c.quality_score, c.duplicate_of, c.turns)):
        total += 1
        states[row["review_status"]] += 1
        scores[score_bin(row["quality_score"])] += 1
        duplicates += 1 if row["duplicate_of"] else 0
        for turn in row["turns"] or ():
            if turn.get("role") == "assistant":
                turns.add(str(turn.get("content", "")))
        if total % _FLUSH_ROWS == 0:
            turns.flush()
        _count_cell(coverage, row["params"] or {}, row["review_status"] == "accepted")
    turns.flush()
    uni, bi = turns.uni, turns.bi
    return DatasetHealth(
        total=total, states={s: states[s] for s in (*REVIEW_STATES, *sorted(set(states) - set(REVIEW_STATES)))},
        scores={**{b: scores[b] for b in SCORE_BINS}, NOT_SCORED: scores[NOT_SCORED]}, duplicates=duplicates,
        distinct_1=uni.ratio(), distinct_2=bi.ratio(), exact=uni.exact and bi.exact, coverage=coverage)


def _add(table: dict[Any, tuple[int, int]], key: Any, accepted: bool) -> None:
    n, ok = table.get(key, (0, 0))
    table[key] = (n + 1, ok + int(accepted))


def _count_cell(coverage: Coverage, params: dict[str, Any], accepted: bool) -> None:
    _add(coverage.cells, (str(params.get("persona", "")), str(params.get("emotion", "")),
                          str(params.get("topic", ""))), accepted)
    if params.get("edge_case") is not None:
        _add(coverage.edge_cases, str(params["edge_case"]), accepted)
    for name, value in (params.get("variables") or {}).items():
        _add(coverage.variables.setdefault(str(name), {}), str(value), accepted)
