"""Times and durations as a person reads them: "5 min ago" with the exact UTC time beside it, "3 min 20 s".

Services hand times over as aware datetimes or ISO strings; every page formats them here, so no
page shows a raw ISO string with microseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.store import utcnow

__all__ = ["ago", "duration", "exact", "relative_and_exact"]


def _as_datetime(when: datetime | str | None) -> datetime | None:
    if when is None or when == "":
        return None
    value = datetime.fromisoformat(when) if isinstance(when, str) else when
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def duration(seconds: float | None) -> str:
    """'45 s', '3 min 20 s', '2 h 5 min', '3 d 4 h'; '—' when unknown."""
    if seconds is None:
        return "—"
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    if s < 86400:
        return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")
    return f"{s // 86400} d" + (f" {s % 86400 // 3600} h" if s % 86400 // 3600 else "")


def ago(when: datetime | str | None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago'; 'never' when there is no time."""
    value = _as_datetime(when)
    if value is None:
        return "never"
    seconds = max((utcnow() - value).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def exact(when: datetime | str | None) -> str:
    """'2025-03-04 13:05:09 UTC', to the second; '—' when there is no time."""
    value = _as_datetime(when)
    return "—" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def relative_and_exact(when: datetime | str | None) -> str:
    """'5 min ago (2025-03-04 13:05:09 UTC)', for places with no hover, such as table cells."""
    value = _as_datetime(when)
    return "never" if value is None else f"{ago(value)} ({exact(value)})"
