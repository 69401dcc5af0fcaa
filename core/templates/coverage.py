"""Which values and edge case each item of a batch gets: cycling through the grid, or balanced.

The grid is the product of the chosen values of every variable (persona, emotion, topic, then
the custom ones in declared order) and, when the batch has edge cases, the edge cases.

- cycle (what batches always did): item k takes grid cell k mod the grid's size, the first
  variable changing slowest and the edge case fastest; weights play no part.
- balanced: the items are shared among the edge cases by weight (largest remainder), and
  within each edge case among the value combinations as evenly as the count allows; the
  combinations that get one item more rotate from one edge case to the next, so that over the
  whole batch every combination, and with equal weights every cell, differs from any other by
  at most one. The combinations that get one more are spread over the grid (not the first few of
  one persona), and items are ordered so that a first part of the batch is spread much the same
  way (each cell's items at even intervals), so a batch stopped half way is still close to balanced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

__all__ = ["COVERAGE_MODES", "Coverage", "Item", "apportion", "plan"]

Coverage = Literal["cycle", "balanced"]
COVERAGE_MODES: tuple[str, ...] = get_args(Coverage)

# one item: the value of each variable (in the order given), and its edge case (None: there are none)
Item = tuple[tuple[str, ...], str | None]


def apportion(count: int, weights: Sequence[float]) -> list[int]:
    """`count` shared in proportion to `weights` (largest remainder; ties to the earlier one)."""
    total = float(sum(weights))
    quotas = [count * w / total for w in weights]
    shares = [math.floor(q) for q in quotas]
    left = count - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def _combo(k: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """Grid index `k` as one index per dimension, the first dimension changing slowest."""
    out: list[int] = []
    for size in reversed(sizes):
        k, r = divmod(k, size)
        out.append(r)
    return tuple(reversed(out))


def plan(values: Sequence[Sequence[str]], edge_cases: Sequence[tuple[str, float]], count: int,
         mode: Coverage = "cycle") -> list[Item]:
    """`count` items over the grid `values` x `edge_cases` ((name, weight) pairs; empty: none)."""
    sizes = [len(v) for v in values]
    combos = math.prod(sizes)
    if combos == 0 or count <= 0:
        return []
    edges: list[tuple[str | None, float]] = list(edge_cases) or [(None, 1.0)]

    def item(combo: int, edge: int) -> Item:
        idx = _combo(combo, sizes)
        return tuple(values[d][i] for d, i in enumerate(idx)), edges[edge][0]

    if mode == "cycle":
        n_edges = len(edges)
        return [item((k % (combos * n_edges)) // n_edges, k % n_edges) for k in range(count)]
    if mode != "balanced":
        raise ValueError(f"unknown coverage mode {mode!r}")
    per_edge = apportion(count, [w for _name, w in edges])
    # combinations in a spread-out order (a stride of about 0.618 of the grid, coprime to it): the ones
    # that get an item more, and those due at the same moment, are far apart in every variable
    step = _stride(combos)
    rank = [0] * combos
    for i in range(combos):
        rank[(i * step) % combos] = i
    # each cell's items at even "times" over the batch, sorted: any first part is spread the same way
    slots: list[tuple[float, int, int, int]] = []
    cursor = 0
    for e, n_e in enumerate(per_edge):
        base, extra = divmod(n_e, combos)
        for c in range(combos):
            target = base + (1 if (rank[c] - cursor) % combos < extra else 0)
            slots.extend(((j + 0.5) / target, rank[c], e, c) for j in range(target))
        cursor = (cursor + extra) % combos
    slots.sort()
    return [item(c, e) for _t, _rank, e, c in slots]


def _stride(n: int) -> int:
    if n <= 2:
        return 1
    step = round(n * 0.6180339887)
    while math.gcd(step, n) != 1:
        step += 1
    return step % n or 1
