"""The Errors page's chart specs: what a bar shows, what a click on it selects, and the range the axis covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.errorlog import SEVERITY_ORDER
from core.ui.error_charts import SELECTION, codes_spec, severity_spec, time_spec

START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _stats(**overrides) -> dict:
    hours = [(START + timedelta(hours=i)).isoformat() for i in range(4)]
    stats = {"bucket": "hour", "buckets": hours, "series_by_type": {"api": [0, 5, 0, 2], "database": [0, 0, 0, 0]},
             "by_severity": dict.fromkeys(SEVERITY_ORDER, 0) | {"critical": 3}, "top_codes": []}
    return stats | overrides


def test_a_cut_code_label_still_selects_the_whole_code():
    """A long code is cut on the axis, while the bar keeps the whole code for the click to filter by."""
    code = "x" * 100
    spec = codes_spec(_stats(top_codes=[{"code": code, "count": 7}]))
    (row,) = spec["data"]["values"]
    assert row["code"] == code and len(row["label"]) == 60 and row["label"].endswith("…")
    assert spec["params"] == [{"name": SELECTION, "select": {"type": "point", "fields": ["code"]}}]


def test_bars_over_time_leave_out_empty_ones_but_the_axis_covers_the_whole_range():
    """Only non-empty (hour, type) bars are sent; the axis runs from the first hour to the end of the last."""
    spec = time_spec(_stats())
    assert [(v["start"], v["type"], v["n"]) for v in spec["data"]["values"]] == [
        ((START + timedelta(hours=1)).isoformat(), "api", 5), ((START + timedelta(hours=3)).isoformat(), "api", 2)]
    first, last = spec["encoding"]["x"]["scale"]["domain"]
    assert (first["date"], first["hours"], last["date"], last["hours"]) == (30, 22, 1, 2)  # across midnight UTC
    assert first["utc"] and last["utc"] and spec["params"][0]["select"]["fields"] == ["start", "type"]


def test_severity_bars_run_from_the_mildest_to_the_most_severe():
    """By severity keeps SEVERITY_ORDER (not the alphabet), each severity once, and a click selects by name."""
    spec = severity_spec(_stats())
    assert [v["severity"] for v in spec["data"]["values"]] == list(SEVERITY_ORDER)
    assert spec["encoding"]["x"]["sort"] is None and spec["params"][0]["select"]["fields"] == ["severity"]
