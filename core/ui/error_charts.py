"""The Errors page's three charts as Vega-Lite specs: over time by type, by severity, top codes.

Vega-Lite, not Plotly: Streamlit loads each chart library in the browser the first time a page
shows one of its charts, and Plotly's is 4.7 MB of JavaScript whose evaluation held the main
thread for 0.6-1.3 s at every new visit, so the table under the charts was drawn that much
later (bench/ui.py --browser). Vega's part is under 1 MB and shares its Arrow code with the table.

Each bar carries what a click on it selects (a point selection named SELECTION over the fields
listed in `clicked`), as values, never as positions: a cut label still selects its whole code.
Vega draws labels as text, so untrusted names need no escaping, only a cut to fit (`chart_text`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errorlog import SEVERITY_ORDER
from core.errorlog.stats import BUCKET_STEPS
from core.ui.safe import chart_text

__all__ = ["BUCKET_WORDS", "SELECTION", "codes_spec", "severity_spec", "time_spec"]

SELECTION = "bar"  # the point selection parameter every chart declares
BUCKET_WORDS = {"minute": "per minute", "hour": "per hour", "day": "per day"}
SEVERITY_COLORS = {"debug": "#adb5bd", "info": "#4dabf7", "warn": "#fab005", "error": "#fa5252",
                   "critical": "#862e9c"}
CHART_HEIGHT = 300  # the whole chart, in pixels, its title and legend included (Streamlit fits the plot in)
CODE_LABEL_CHARS = 60
# a bar fills its minute, hour or day (Vega-Lite time units, read in UTC like every time the app shows)
_TIME_UNITS = {"minute": "utcyearmonthdatehoursminutes", "hour": "utcyearmonthdatehours", "day": "utcyearmonthdate"}
_TIME_FORMATS = {"minute": "%H:%M", "hour": "%b %d %H:%M", "day": "%b %d"}


def _chart(title: str, values: list[dict[str, Any]], encoding: dict[str, Any], clicked: list[str]) -> dict[str, Any]:
    """A bar chart of inline `values`, titled on the left, whose bars a click selects by `clicked`."""
    return {
        "title": {"text": title, "anchor": "start"},
        "height": CHART_HEIGHT,
        "data": {"values": values},
        "mark": {"type": "bar", "cursor": "pointer"},
        "params": [{"name": SELECTION, "select": {"type": "point", "fields": clicked}}],
        "encoding": encoding,
    }


def _vega_time(t: datetime) -> dict[str, Any]:
    """`t` (UTC) as a Vega-Lite DateTime, the form a temporal scale's domain takes."""
    return {"year": t.year, "month": t.month, "date": t.day, "hours": t.hour, "minutes": t.minute, "utc": True}


def _count(title: str | None = None) -> dict[str, Any]:
    return {"field": "n", "type": "quantitative", "title": title}


def time_spec(stats: dict[str, Any]) -> dict[str, Any]:
    """Bars per minute, hour or day (`stats['bucket']`), stacked by type; a click selects a type's bar."""
    bucket = stats["bucket"]
    # one row per non-empty (bar, type): an empty one draws nothing, and a month of hours stays small
    values = [{"start": start, "type": chart_text(name), "n": n}
              for name, counts in stats["series_by_type"].items()
              for start, n in zip(stats["buckets"], counts, strict=True) if n]
    time_axis = {"field": "start", "type": "temporal", "timeUnit": _TIME_UNITS[bucket], "title": None,
                 "axis": {"format": _TIME_FORMATS[bucket], "labelOverlap": True}}
    if stats["buckets"]:  # the whole range, so an incident shows where it happened, not stretched across
        first = datetime.fromisoformat(stats["buckets"][0])
        last = datetime.fromisoformat(stats["buckets"][-1]) + BUCKET_STEPS[bucket]
        time_axis["scale"] = {"domain": [_vega_time(first), _vega_time(last)]}
    return _chart(f"Over time by type, {BUCKET_WORDS[bucket]}", values, {
        "x": time_axis,
        "y": {**_count(), "stack": "zero"},
        "color": {"field": "type", "type": "nominal", "title": None,
                  "legend": {"orient": "top", "direction": "horizontal", "columns": 4}},
        "tooltip": [{"field": "start", "type": "temporal", "timeUnit": _TIME_UNITS[bucket], "title": "From (UTC)",
                     "format": "%Y-%m-%d %H:%M"},
                    {"field": "type", "type": "nominal", "title": "Type"}, _count("Rows")],
    }, clicked=["start", "type"])


def severity_spec(stats: dict[str, Any]) -> dict[str, Any]:
    """One bar per severity, mildest to most severe, in the severity's colour; a click selects it."""
    by_severity = stats["by_severity"]
    names = [*SEVERITY_ORDER, *(s for s in by_severity if s not in SEVERITY_ORDER)]
    values = [{"severity": chart_text(s), "n": by_severity.get(s, 0)} for s in names]
    return _chart("By severity", values, {
        "x": {"field": "severity", "type": "nominal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
        "y": _count(),
        "color": {"field": "severity", "type": "nominal", "legend": None,
                  "scale": {"domain": list(SEVERITY_COLORS), "range": list(SEVERITY_COLORS.values()),
                            "unknown": "#868e96"}},
        "tooltip": [{"field": "severity", "type": "nominal", "title": "Severity"}, _count("Rows")],
    }, clicked=["severity"])


def codes_spec(stats: dict[str, Any]) -> dict[str, Any]:
    """The most frequent codes, largest on top; the label may be cut, a click selects the whole code."""
    values = [{"code": t["code"], "label": chart_text(t["code"], CODE_LABEL_CHARS), "n": t["count"]}
              for t in stats["top_codes"]]
    return _chart("Top codes", values, {
        "y": {"field": "label", "type": "nominal", "sort": "-x", "title": None},
        "x": {**_count(), "axis": {"format": "~s"}},  # 60k, not a 60,000 cut at the edge
        "tooltip": [{"field": "code", "type": "nominal", "title": "Code"}, _count("Rows")],
    }, clicked=["code"])
