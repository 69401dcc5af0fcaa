"""Dataset health of a set of conversations: review states, score histogram, duplicate rate, distinct-n, coverage.

One streamed pass over the matching conversations (core.conversations.stream_rows, only the
columns it needs), so the numbers are of the same rows the list and the export show. distinct-n is
the share of an assistant turn's word n-grams (n = 1, 2; lower-cased words, n-grams inside one
turn) that are distinct over the whole set: near 1, varied answers; near 0, the model repeats
itself. Exact up to settings.dataset_health_exact_ngrams distinct n-grams, then a HyperLogLog
estimate (datasketch, about 1 % off), so memory stays bounded for any size of set.

The coverage grid counts conversations, and accepted ones, per persona x emotion x topic cell
(and per edge case and custom value), in core.templates.grid's Coverage: (conversations, accepted).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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


class _Distinct:
    """Distinct values among hashed n-grams: a set while small, then HyperLogLog."""

    def __init__(self, exact_max: int) -> None:
        self.exact_max = exact_max
        self.seen: set[int] | None = set()
        self.sketch: Any = None
        self.total = 0

    def add(self, hashes: list[int]) -> None:
        self.total += len(hashes)
        if self.seen is not None:
            self.seen.update(hashes)
            if len(self.seen) > self.exact_max:
                self._to_sketch()
        else:
            for h in hashes:
                self.sketch.update(h)

    def _to_sketch(self) -> None:
        from datasketch import HyperLogLogPlusPlus

        self.sketch = HyperLogLogPlusPlus(p=14, hashfunc=lambda h: h & _MASK64)
        for h in self.seen or ():
            self.sketch.update(h)
        self.seen = None

    @property
    def exact(self) -> bool:
        return self.seen is not None

    def ratio(self) -> float | None:
        if not self.total:
            return None
        distinct = len(self.seen) if self.seen is not None else int(self.sketch.count())
        return min(distinct / self.total, 1.0)


def distinct_n(texts: list[str], n: int) -> float | None:
    """distinct-n of `texts` (each a turn), exactly: distinct n-grams / all n-grams; None when there are none."""
    counter = _Distinct(exact_max=1 << 62)
    for text in texts:
        counter.add(_ngrams(_WORD.findall(text.lower()), n))
    return counter.ratio()


def _ngrams(words: list[str], n: int) -> list[int]:
    if n == 1:
        return [hash(w) for w in words]
    return [hash(g) for g in zip(*(words[i:] for i in range(n)), strict=False)]


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
    limit = get_settings().dataset_health_exact_ngrams
    uni, bi = _Distinct(limit), _Distinct(limit)
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
                words = _WORD.findall(str(turn.get("content", "")).lower())
                uni.add(_ngrams(words, 1))
                bi.add(_ngrams(words, 2))
        _count_cell(coverage, row["params"] or {}, row["review_status"] == "accepted")
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
