"""Dataset health as Vega-Lite specs, in the Errors charts' style (core.ui.error_charts): review states, scores.

Bars of inline values, titled on the left, the whole chart CHART_HEIGHT tall. Nothing to click:
these charts are read at a glance. Labels are constants of ours (states, score bins), drawn as text.
"""

from __future__ import annotations

from typing import Any

from core.datasets import NOT_SCORED, DatasetHealth
from core.ui.error_charts import CHART_HEIGHT

__all__ = ["STATE_COLORS", "STATE_LABELS", "scores_spec", "states_spec"]

STATE_LABELS = {"accepted": "accepted", "needs_review": "needs review", "rejected": "rejected",
                "regenerate": "regenerate"}
STATE_COLORS = {"accepted": "#40c057", "needs review": "#fab005", "rejected": "#fa5252", "regenerate": "#868e96"}


def _bars(title: str, values: list[dict[str, Any]], encoding: dict[str, Any]) -> dict[str, Any]:
    return {"title": {"text": title, "anchor": "start"}, "height": CHART_HEIGHT, "data": {"values": values},
            "mark": {"type": "bar"}, "encoding": encoding}


def _count(title: str | None = None) -> dict[str, Any]:
    return {"field": "n", "type": "quantitative", "title": title, "axis": {"tickMinStep": 1}}


def states_spec(health: DatasetHealth) -> dict[str, Any]:
    """One bar per review state, in the state's colour: where the set stands."""
    values = [{"state": STATE_LABELS.get(s, s), "n": n} for s, n in health.states.items()]
    return _bars("Review states", values, {
        "x": {"field": "state", "type": "nominal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
        "y": _count(),
        "color": {"field": "state", "type": "nominal", "legend": None,
                  "scale": {"domain": list(STATE_COLORS), "range": list(STATE_COLORS.values()),
                            "unknown": "#adb5bd"}},
        "tooltip": [{"field": "state", "type": "nominal", "title": "State"}, {**_count("Conversations")}],
    })


def scores_spec(health: DatasetHealth) -> dict[str, Any]:
    """The quality-score histogram, 0-9 to 90-100 left to right; conversations not scored yet in grey at the end."""
    values = [{"bin": b, "n": n, "scored": b != NOT_SCORED} for b, n in health.scores.items()
              if b != NOT_SCORED or n]
    return _bars("Quality score", values, {
        "x": {"field": "bin", "type": "ordinal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
        "y": _count(),
        "color": {"field": "scored", "type": "nominal", "legend": None,
                  "scale": {"domain": [True, False], "range": ["#4dabf7", "#adb5bd"]}},
        "tooltip": [{"field": "bin", "type": "ordinal", "title": "Score"}, {**_count("Conversations")}],
    })
