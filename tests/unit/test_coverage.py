"""Scenario coverage: cycling as batches always did, or balanced so no cell of the grid is thin."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from core.templates.coverage import apportion, plan

VALUES = [["p1", "p2", "p3"], ["e1", "e2"], ["t1", "t2", "t3", "t4", "t5"]]


def _cells(values, edges):
    names = [e for e, _w in edges] or [None]
    return [(combo, e) for combo in itertools.product(*values) for e in names]


def test_cycle_is_the_grid_in_order_first_variable_slowest():
    """Cycling gives the grid's cells in order, then starts again: today's batches."""
    items = plan([["p1", "p2"], ["e1"], ["t1", "t2", "t3"]], [], 7, "cycle")
    assert [(v[0], v[2]) for v, _e in items] == [("p1", "t1"), ("p1", "t2"), ("p1", "t3"), ("p2", "t1"),
                                                 ("p2", "t2"), ("p2", "t3"), ("p1", "t1")]
    assert {e for _v, e in items} == {None}


@pytest.mark.parametrize("count", [1, 7, 29, 30, 31, 59, 61, 100, 1_000])
@pytest.mark.parametrize("edges", [[], [("a", 1), ("b", 1)], [("a", 1), ("b", 1), ("c", 1)]])
def test_balanced_counts_differ_by_at_most_one_across_cells(count, edges):
    """Every cell of values x edge cases (equal weights) gets as many items as any other, give or take one."""
    items = plan(VALUES, edges, count, "balanced")
    counts = Counter(items)
    per_cell = [counts.get(cell, 0) for cell in _cells(VALUES, edges)]
    assert len(items) == count
    assert max(per_cell) - min(per_cell) <= 1


@pytest.mark.parametrize("count", [10, 45, 301])
def test_balanced_edge_cases_follow_their_weights_and_combinations_stay_even(count):
    """Weights 3:1:1 share the items 3:1:1 (largest remainder); the value combinations still differ by one at most."""
    edges = [("a", 3), ("b", 1), ("c", 1)]
    items = plan(VALUES, edges, count, "balanced")
    by_edge = Counter(e for _v, e in items)
    assert [by_edge[e] for e, _w in edges] == apportion(count, [3, 1, 1])
    combos = Counter(v for v, _e in items)
    per_combo = [combos.get(c, 0) for c in itertools.product(*VALUES)]
    assert max(per_combo) - min(per_combo) <= 1


def test_any_first_part_of_a_balanced_batch_is_spread_too():
    """The first half of a balanced batch already covers the edge cases by weight, not one after the other."""
    items = plan(VALUES, [("a", 1), ("b", 1)], 60, "balanced")
    first_half = Counter(e for _v, e in items[:30])
    assert abs(first_half["a"] - first_half["b"]) <= 1


def test_apportion_shares_by_largest_remainder():
    """10 by 1:1:1 is 4, 3, 3; the earlier one wins a tie."""
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(7, [2.5, 0.5]) == [6, 1]
    assert sum(apportion(1_000, [0.3, 0.3, 0.4])) == 1_000


def test_a_balanced_batch_smaller_than_its_grid_is_spread_over_every_variable():
    """Six items of a 30-cell grid are not six topics of the first persona: each variable takes several values."""
    items = plan(VALUES, [], 6, "balanced")
    for d in range(3):
        assert len({v[d] for v, _e in items}) >= 2, [v for v, _e in items]
    assert len(set(items)) == 6
