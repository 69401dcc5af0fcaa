"""Times and durations as a person reads them: relative, exact to the second, never raw ISO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.store import utcnow
from core.ui.timefmt import ago, duration, exact, relative_and_exact


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0, "0 s"), (44.6, "45 s"), (60, "1 min"), (200, "3 min 20 s"), (7500, "2 h 5 min"),
    (3 * 86400 + 4 * 3600, "3 d 4 h"),
])
def test_durations_read_in_the_largest_two_units(seconds, text):
    """A duration is said in at most two units, rounded to the second."""
    assert duration(seconds) == text


def test_exact_time_is_utc_to_the_second_whatever_its_form():
    """An aware datetime and its ISO string with microseconds both show as 'YYYY-MM-DD HH:MM:SS UTC'."""
    when = datetime(2025, 3, 4, 13, 5, 9, 123456, tzinfo=UTC)
    assert exact(when) == exact(when.isoformat()) == "2025-03-04 13:05:09 UTC"
    assert exact(None) == "—"


def test_relative_time_accepts_iso_strings_and_keeps_the_exact_time_beside_it():
    """An ISO string five minutes old reads '5 min ago', followed by its exact time."""
    when = utcnow() - timedelta(minutes=5)
    assert ago(when.isoformat()) == "5 min ago"
    assert relative_and_exact(when) == f"5 min ago ({exact(when)})"
    assert ago(None) == "never"
