"""Small reusable pieces: status badges, metric cards, progress rows, relative times."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.ui.safe import literal
from core.ui.timefmt import ago

__all__ = ["ago", "badge", "breaker_badge", "metric_cards", "severity_badge", "status_badge"]

_STATUS_COLORS = {
    "queued": "gray", "running": "blue", "paused": "orange", "failed": "red", "cancelled": "gray",
    "completed": "green", "done": "green", "pending": "gray", "skipped": "gray",
    "in_progress": "blue", "discarded": "gray", "interrupted": "orange", "stopped": "red",
    "paused automatically": "orange",
}
_SEVERITY_COLORS = {"debug": "gray", "info": "blue", "warn": "orange", "error": "red", "critical": "violet"}
_BREAKER = {"closed": ("green", "closed"), "half_open": ("orange", "half-open"), "open": ("red", "OPEN")}


def badge(label: str, color: str = "gray", icon: str | None = None) -> str:
    """Markdown for a coloured badge (renders inside st.markdown, captions, table-free text).

    `label` is shown as text (it may come from a row); `color` and `icon` are the caller's constants.
    """
    prefix = f"{icon} " if icon else ""
    return f":{color}-badge[{prefix}{literal(label)}]"


def status_badge(status: str) -> str:
    return badge(status.replace("_", " "), _STATUS_COLORS.get(status, "gray"))


def severity_badge(severity: str) -> str:
    return badge(severity, _SEVERITY_COLORS.get(severity, "gray"))


def breaker_badge(snapshot: dict[str, Any]) -> str:
    color, label = _BREAKER.get(str(snapshot.get("state")), ("gray", str(snapshot.get("state"))))
    return badge(f"{snapshot.get('name', '?')}: {label}", color, ":material/electrical_services:")


def metric_cards(items: list[tuple[str, Any, str | None]]) -> None:
    """A row of bordered metrics: (label, value, help)."""
    cols = st.columns(len(items))
    for col, (label, value, help_text) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_text, border=True)
