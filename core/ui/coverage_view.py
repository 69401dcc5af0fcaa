"""Scenario coverage: the custom variables, edge cases and coverage of a new batch (Batches page), and the
coverage grid (persona x emotion x topic, then edge cases and custom variables): a batch's done / items, and a
set of conversations' accepted / conversations (dataset health, core.ui.health_view)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.store import get_engine
from core.templates import Template
from core.templates.coverage import COVERAGE_MODES
from core.templates.grid import Coverage, batch_coverage
from core.ui.boundaries import section_key

__all__ = ["coverage_grid", "coverage_table", "grid_caption", "grid_options", "grid_size"]

_COVERAGE_LABELS = {"cycle": "Cycle through the grid", "balanced": "Balanced: every cell as often as the count allows"}


def grid_options(tmpl: Template, prefix: str, hints: dict[str, Any]) -> dict[str, Any]:
    """The template's custom variables and edge cases to draw from, and how: the keyword arguments of create_batch."""
    content = tmpl.content
    chosen: dict[str, Any] = {}
    if content.custom_variables:
        cols = st.columns(min(len(content.custom_variables), 3))
        variables = {}
        for i, name in enumerate(content.custom_variables):
            col = cols[i % len(cols)]
            variables[name] = col.multiselect(name.replace("_", " ").capitalize(), content.values(name),
                                              default=list(content.values(name)[:2]),
                                              key=section_key(prefix, f"var_{tmpl.name}_{name}"), accept_new_options=True)
            hints[name] = col.empty()
        chosen["variables"] = variables
    if content.edge_cases:
        names = [e.name for e in content.edge_cases]
        chosen["edge_cases"] = st.multiselect(
            "Edge cases (drawn by weight when balanced)", names, default=names,
            key=section_key(prefix, f"edges_{tmpl.name}"),
            help="; ".join(f"{e.name}: weight {e.weight}" for e in content.edge_cases))
        hints["edge_cases"] = st.empty()
    chosen["coverage"] = st.radio("Coverage", COVERAGE_MODES, format_func=_COVERAGE_LABELS.__getitem__,
                                  horizontal=True, key=section_key(prefix, f"coverage_{tmpl.name}"))
    hints["coverage"] = st.empty()
    return chosen


def grid_size(values: list[list[str]], scenario: dict[str, Any]) -> int:
    """How many cells the chosen values (and edge cases) make."""
    size = 1
    for chosen in [*values, *(scenario.get("variables") or {}).values()]:
        size *= max(len(chosen), 1)
    return size * max(len(scenario.get("edge_cases") or ()), 1)


def grid_caption(grid: int, count: int, scenario: dict[str, Any]) -> str:
    if scenario.get("coverage") == "balanced":
        return f"{grid:,} combinations; {count:,} conversations shared among them evenly (give or take one)."
    return f"{grid:,} combinations, cycled until {count:,} conversations are made."


def _shown(cell: tuple[int, int]) -> str:
    items, done = cell
    return f"{done}/{items}"


def coverage_grid(batch_id: str) -> None:
    """Done / items per persona x emotion (rows) and topic (columns), then per edge case and custom value."""
    coverage_table(batch_coverage(get_engine(), batch_id), "done / items")


def coverage_table(coverage: Coverage, counted_as: str) -> None:
    """The grid of `coverage` in an expander: each cell `part/whole` (`counted_as` says which, e.g. "done / items")."""
    if not coverage.cells:
        return
    with st.expander(f"Coverage ({counted_as} per cell; the thinnest cell has {coverage.thinnest})",
                     icon=":material/grid_on:"):
        topics = sorted({t for _p, _e, t in coverage.cells})
        rows = sorted({(p, e) for p, e, _t in coverage.cells})
        st.dataframe(pd.DataFrame(
            [{"persona": p, "emotion": e, **{t: _shown(coverage.cells.get((p, e, t), (0, 0))) for t in topics}}
             for p, e in rows]), hide_index=True)
        if coverage.edge_cases:
            st.dataframe(pd.DataFrame([{"edge case": name, counted_as: _shown(cell)}
                                       for name, cell in sorted(coverage.edge_cases.items())]), hide_index=True)
        for name, values in coverage.variables.items():
            st.dataframe(pd.DataFrame([{name: value, counted_as: _shown(cell)}
                                       for value, cell in sorted(values.items())]), hide_index=True)
