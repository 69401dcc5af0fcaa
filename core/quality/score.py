"""The heuristic score: 0-100, the sum of the points of the checks that passed, with its parts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.quality.checks import CHECK_NAMES, CheckResult

__all__ = ["POINTS", "Score", "score"]

# what each check is worth; they add up to 100. Structure and the absence of model artefacts weigh
# most: a conversation that refuses or is cut short trains the wrong thing, a missing persona word
# only weakens it.
POINTS: Mapping[str, int] = {
    "roles_alternate": 15,
    "turn_count": 10,
    "no_placeholder": 10,
    "turn_length": 10,
    "no_meta_text": 10,
    "no_refusal": 15,
    "no_repetition": 15,
    "persona_present": 5,
    "emotion_present": 5,
    "topic_present": 5,
}
assert set(POINTS) == set(CHECK_NAMES) and sum(POINTS.values()) == 100


@dataclass(frozen=True)
class Score:
    """The total and the points each check earned (0 for a failed one), in the checks' order."""

    total: int
    parts: dict[str, int] = field(default_factory=dict)


def score(checks: Iterable[CheckResult]) -> Score:
    """The score of a conversation's checks: each passed check earns its POINTS."""
    parts = {c.name: (POINTS.get(c.name, 0) if c.passed else 0) for c in checks}
    return Score(min(100, sum(parts.values())), parts)
