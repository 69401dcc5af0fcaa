"""Words shown to a person that depend on a number: one helper, so "1 items" cannot come back."""

from __future__ import annotations

__all__ = ["counted"]

# nouns whose plural is not noun + "s"
_PLURALS = {"entry": "entries", "retry": "retries", "batch": "batches"}


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 item", "2 items", "1,000 items": the number with thousands separators and the noun agreeing with it."""
    if n == 1:
        return f"{n:,} {noun}"
    if plural is None:
        head, _, last = noun.rpartition(" ")  # "failed batch": the last word takes the plural
        plural = f"{head} {_PLURALS.get(last, last + 's')}".lstrip()
    return f"{n:,} {plural}"
