"""Routing: accepted at or above the accept score, needs review between, regenerate below or on a hard fail."""

from __future__ import annotations

import pytest

from core.config import get_settings
from core.quality import ACCEPTED, NEEDS_REVIEW, REGENERATE, Assessment, CheckResult, Duplicate, route
from core.quality.score import Score


def _assessment(total: int, *, hard_failed: bool = False) -> Assessment:
    import numpy as np

    checks = [CheckResult("roles_alternate", not hard_failed, True, "broken" if hard_failed else "")]
    return Assessment(checks, Score(total, {}), "0" * 64, np.zeros(128, dtype=np.uint32), "")


SETTINGS = {"quality_accept_score": 80, "quality_review_score": 50}


@pytest.mark.parametrize(("total", "expected"), [
    (100, ACCEPTED), (80, ACCEPTED), (79, NEEDS_REVIEW), (50, NEEDS_REVIEW), (49, REGENERATE), (0, REGENERATE)])
def test_each_threshold_routes_its_side(total, expected):
    """At the accept score: accepted; just under it down to the review score: needs review; under that: regenerate."""
    s = get_settings().replace(**SETTINGS)
    assert route(_assessment(total), None, s) == expected


def test_a_failed_hard_check_regenerates_whatever_the_score():
    """A conversation scoring 95 with a failed hard check is generated again."""
    s = get_settings().replace(**SETTINGS)
    assert route(_assessment(95, hard_failed=True), None, s) == REGENERATE


def test_a_duplicate_is_never_accepted():
    """A perfect score that duplicates an accepted conversation waits for a reviewer."""
    s = get_settings().replace(**SETTINGS)
    dup = Duplicate("c1", "near", 0.9, "shared words")
    assert route(_assessment(100), dup, s) == NEEDS_REVIEW
    assert route(_assessment(10), dup, s) == REGENERATE


def test_equal_thresholds_leave_no_review_band():
    """With both scores at 70, 70 accepts and 69 regenerates."""
    s = get_settings().replace(quality_accept_score=70, quality_review_score=70)
    assert route(_assessment(70), None, s) == ACCEPTED
    assert route(_assessment(69), None, s) == REGENERATE


def test_a_review_score_above_the_accept_score_is_refused():
    """Settings refuse a review score above the accept score, naming both."""
    from core.config import SettingsError

    with pytest.raises(SettingsError, match="QUALITY_REVIEW_SCORE must be <= STUDIO_QUALITY_ACCEPT_SCORE"):
        get_settings().replace(quality_accept_score=50, quality_review_score=60)
