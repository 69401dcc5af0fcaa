"""Dataset health of a set of conversations, where people look: counts, two charts, distinct-n, the coverage grid.

On a batch's detail (its conversations) and on the Conversations page (the filtered set). The
numbers are core.datasets.dataset_health's, one streamed pass, cached per viewer and filter (the
viewer is part of the key) for settings.ui_health_refresh_s, so the live batch view does not
recount at every refresh.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import streamlit as st

from core.auth import Actor, acting_as
from core.config import get_settings
from core.conversations import ConversationFilter
from core.datasets import DatasetHealth, dataset_health
from core.store import get_engine, utcnow
from core.ui import coverage_view, health_charts
from core.ui.timefmt import ago, duration
from core.ui.user import current_person
from core.ui.widgets import metric_cards

__all__ = ["health_panel", "load_health"]

@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _health(url: str, viewer: Actor, flt: ConversationFilter, period: int) -> tuple[DatasetHealth, datetime]:
    """The health as `viewer` sees it and when it was counted, once per `period` (refresh intervals since the epoch)."""
    with acting_as(viewer):  # the rows counted are the ones `viewer` may see: they are part of the key
        return dataset_health(get_engine(url), flt), utcnow()


def load_health(flt: ConversationFilter) -> tuple[DatasetHealth, datetime]:
    """The health of the filtered set as this run's person sees it, and when it was counted.

    A "since" moving with the clock is cut to the minute.
    """
    if flt.since is not None:
        flt = dataclasses.replace(flt, since=flt.since.replace(second=0, microsecond=0))
    settings = get_settings()
    # a refresh interval changed on the Settings page applies at once: it is part of the key, not the ttl
    return _health(settings.effective_database_url, current_person(), flt,
                   int(time.time() // settings.ui_health_refresh_s))


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"


def _ratio(value: float | None, exact: bool) -> str:
    return "—" if value is None else f"{value:.2f}" + ("" if exact else " (est.)")


def health_panel(flt: ConversationFilter, what: str = "these conversations") -> DatasetHealth:
    """Counts by review state, duplicate rate and distinct-1/2 as cards; review states and scores as charts; coverage."""
    health, counted = load_health(flt)
    st.markdown("**Dataset health**")
    # counted at most once a refresh interval: a running batch's newest conversations may not be in it yet
    st.caption(f"Counted {ago(counted)}; counted again every {duration(get_settings().ui_health_refresh_s)}.")
    if not health.total:
        st.caption(f"No conversations yet in {what}.")
        return health
    states = health.states
    metric_cards([
        ("Conversations", f"{health.total:,}", None),
        ("Accepted", f"{states.get('accepted', 0):,}", "Passed the checks or a reviewer: what an export holds "
                                                       "by default"),
        ("Needs review", f"{states.get('needs_review', 0):,}", "Waiting in the review queue"),
        ("Rejected", f"{states.get('rejected', 0):,}", None),
    ])
    metric_cards([
        ("Duplicate rate", _share(health.duplicate_rate),
         "Share flagged as an exact or near duplicate of another conversation"),
        ("Distinct-1", _ratio(health.distinct_1, health.exact),
         "Distinct words / all words of the assistant turns: near 1 varied, near 0 repetitive"),
        ("Distinct-2", _ratio(health.distinct_2, health.exact),
         "Distinct word pairs / all word pairs of the assistant turns"),
    ])
    left, right = st.columns(2)
    left.vega_lite_chart(health_charts.states_spec(health), width="stretch")
    right.vega_lite_chart(health_charts.scores_spec(health), width="stretch")
    coverage_view.coverage_table(health.coverage, "accepted / conversations")
    return health
