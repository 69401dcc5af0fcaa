"""The Home page's pieces: health at a glance, each with a link to act on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from core.batches import service as batches
from core.config import get_settings
from core.drafts import list_unfinished_drafts
from core.errorlog import error_stats
from core.resilience import all_breakers
from core.store import get_engine
from core.ui.safe import literal
from core.ui.shell import PROVIDER_TEXT
from core.ui.user import current_user
from core.ui.widgets import breaker_badge, status_badge

__all__ = ["active_batches", "errors_24h", "provider_and_breakers", "unfinished_drafts"]


def provider_and_breakers() -> None:
    s = get_settings()
    text = PROVIDER_TEXT.get(s.provider, s.provider)
    (st.warning if s.provider == "sandbox" else st.success)(
        f"Model provider: {text}. Default model {literal(s.default_model)}.", icon=":material/smart_toy:")
    snaps = all_breakers()
    opened = [b for b in snaps if b.get("state") != "closed"]
    st.markdown("**Circuit breakers** " + (" ".join(breaker_badge(b) for b in snaps) or "no calls yet"))
    if opened:
        st.error("A circuit breaker is open: calls to that service pause until it cools down; batches wait and "
                 "resume by themselves.", icon=":material/electrical_services:")
        st.page_link("app_pages/settings.py", label="Check the service in Settings → Health", icon=":material/settings:")


def active_batches() -> None:
    rows = batches.list_batches(get_engine(), status=["queued", "running", "paused", "failed"], limit=10)
    if not rows:
        st.caption("No active batches.")
    for b in rows:
        state = "interrupted" if b.get("interrupted") else b["state"]
        done = b["done"] + b["failed"] + b["skipped"]
        st.markdown(f"**{literal(b['name'])}** {status_badge(state)}")
        st.progress(min(b["progress"], 1.0), text=f"{done} / {b['total']} ({b['progress']:.0%})")
    needs_action = [b for b in rows if b["state"] in ("paused", "failed") or b.get("interrupted")]
    c1, c2 = st.columns(2)
    c1.page_link("app_pages/batches.py", label="Open Batches", icon=":material/stacks:")
    if needs_action:
        c2.page_link("app_pages/recovery.py", label=f"{len(needs_action)} need attention → Recovery",
                     icon=":material/healing:")


@st.cache_data(ttl=10, show_spinner=False)
def _stats_24h(url: str, since: datetime) -> dict[str, int]:
    return error_stats(get_engine(url), since=since, bucket="hour")["by_severity"]


def errors_24h() -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    by_sev = _stats_24h(get_settings().effective_database_url, since)
    cols = st.columns(len(by_sev))
    for col, (sev, n) in zip(cols, by_sev.items(), strict=True):
        col.metric(literal(sev), f"{n:,}", border=True)
    if not any(by_sev.values()):
        st.caption("No errors in the last 24 hours.")
    st.page_link("app_pages/errors.py", label="Open Errors", icon=":material/bug_report:")


def unfinished_drafts() -> None:
    drafts = list_unfinished_drafts(get_engine(), user=current_user())
    if not drafts:
        st.caption("No unfinished drafts.")
        return
    for d in drafts[:5]:
        st.markdown(f"- {literal((d.get('params') or {}).get('topic', ''))} — {d.get('progress', 0):.0%} written, "
                    f"{literal(d['status'].replace('_', ' '))}")
    st.page_link("app_pages/generate.py", label=f"Resume or discard {len(drafts)} draft(s) in Generate",
                 icon=":material/edit_note:")
