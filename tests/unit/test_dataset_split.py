"""The split's assignment: whole groups, seeded by ids, train at the ratio within one item."""

from __future__ import annotations

import random
import uuid

import pytest

from core.datasets import assign, train_target


def _groups(sizes: list[int], seed: int = 0) -> list[list[str]]:
    rnd = random.Random(seed)
    return [[str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(n)] for n in sizes]


@pytest.mark.parametrize("ratio", [0.5, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_train_holds_the_ratio_within_one_item_and_no_group_is_cut(ratio, seed):
    """Mostly single conversations with some duplicate groups: train is ratio x n give or take one, groups whole."""
    rnd = random.Random(seed)
    groups = _groups([rnd.choice([1, 1, 1, 2, 3, 5]) for _ in range(300)], seed)
    sides = assign(groups, ratio)
    n = sum(len(g) for g in groups)
    train = sum(1 for s in sides.values() if s == "train")
    assert abs(train - ratio * n) <= 1 and len(sides) == n
    assert all(len({sides[cid] for cid in g}) == 1 for g in groups)


def test_the_same_groups_in_any_order_give_the_same_sides():
    """The order comes from the ids, not from the order rows were read in."""
    groups = _groups([1] * 50 + [2] * 10)
    shuffled = [list(reversed(g)) for g in reversed(groups)]
    assert assign(groups, 0.7) == assign(shuffled, 0.7)


def test_groups_too_big_for_the_gap_leave_train_short_rather_than_cut():
    """Five pairs at 0.9: train cannot hold 9 without cutting a pair, so it holds 8."""
    groups = _groups([2] * 5)
    sides = assign(groups, 0.9)
    assert sum(1 for s in sides.values() if s == "train") == 8 == train_target(0.9, 10) - 1


def test_the_target_rounds_halves_up():
    """0.5 of 5 is 3 (not banker's 2); 0.9 of 10 is 9."""
    assert (train_target(0.5, 5), train_target(0.9, 10), train_target(0.95, 1)) == (3, 9, 1)
