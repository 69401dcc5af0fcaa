"""The Home page's pieces: health at a glance, each with a link to act on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st

from core import recovery
from core.auth import Actor, acting_as
from core.batches import service as batches
from core.config import get_settings
from core.drafts import DraftSession, unfinished_drafts_page
from core.errorlog import ErrorFilter, error_stats, search_errors
from core.errors import ErrorCode, Severity
from core.resilience import all_breakers
from core.store import get_engine
from core.ui.batches_view import run_action
from core.ui.generate_view import start_job
from core.ui.safe import literal
from core.ui.shell import PROVIDER_TEXT
from core.ui.user import current_person
from core.ui.widgets import ago, breaker_badge, status_badge
from core.wording import counted

__all__ = ["active_batches", "errors_24h", "next_actions", "provider_and_breakers", "unfinished_drafts"]

# the severities Home counts as errors: debug and info rows are notes, not problems
_ERROR_SEVERITIES = (Severity.CRITICAL, Severity.ERROR, Severity.WARN)
BREAKER_HISTORY_ROWS = 5  # the latest breaker state changes Home lists
HOME_DRAFTS = 5  # the latest unfinished drafts Home offers to resume (Generate pages through all of them)
_STATE_WORDS = {ErrorCode.CIRCUIT_OPENED: "opened", ErrorCode.CIRCUIT_HALF_OPEN: "half-open",
                ErrorCode.CIRCUIT_CLOSED: "closed"}


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
    breaker_history()


def breaker_history() -> None:
    """The breakers' latest state changes of the last 24 hours: events from the error log, not errors."""
    since = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    events = search_errors(get_engine(), ErrorFilter(kind="event", since=since), page_size=BREAKER_HISTORY_ROWS)
    if not events.total:
        st.caption("No circuit breaker changed state in the last 24 hours.")
        return
    lines = [f"- {literal((e.get('component') or '').removeprefix('breaker.'))} "
             f"{_STATE_WORDS.get(e['error_code'], literal(e['error_code']))} · {ago(e['created_at'])}"
             for e in events.rows]
    st.markdown(f"**Breaker history** ({events.total:,} state changes in 24 h)\n\n" + "\n".join(lines))
    st.page_link("app_pages/errors.py", label="All breaker events", icon=":material/electrical_services:",
                 query_params={"kind": "event"})


def next_actions() -> None:
    """Start something new in one click."""
    c1, c2, _ = st.columns([1, 1, 3])
    c1.page_link("app_pages/generate.py", label="Generate one", icon=":material/edit:")
    c2.page_link("app_pages/batches.py", label="New batch", icon=":material/add:")


def _one_click(b: dict[str, Any]) -> None:
    """The action a stopped batch needs: retry its failed items if it has some, else resume it."""
    if b["state"] == "failed" and b["failed"]:
        label, icon, kwargs = "Retry failed", ":material/replay:", {"failed_only": True}
    elif b["state"] == "paused" and b.get("pause_kind") == "breaker":
        label, icon, kwargs = "Resume now", ":material/play_arrow:", {}
    else:
        label, icon, kwargs = "Resume", ":material/play_arrow:", {}
    st.button(label, key=f"home.{label}_{b['id']}", icon=icon, on_click=run_action,
              args=(label, batches.resume_batch, b["id"]), kwargs=kwargs)


def active_batches() -> None:
    rows = batches.list_batches(get_engine(), status=["queued", "running", "paused", "failed"], limit=10)
    if not rows:
        st.caption("No active batches.")
    for b in rows:
        done = b["done"] + b["failed"] + b["skipped"]
        st.markdown(f"**{literal(b['name'])}** {status_badge(b['shown_state'])}")
        st.progress(min(b["progress"], 1.0), text=f"{done} / {b['total']} ({b['progress']:.0%})")
        if b["may_act"] and (b["state"] in ("paused", "failed") or b.get("interrupted")):
            _one_click(b)
    # the Recovery page's own finders: Home and Recovery never disagree on what needs attention
    attention = recovery.needs_attention(get_engine())
    c1, c2 = st.columns(2)
    c1.page_link("app_pages/batches.py", label="Open Batches", icon=":material/stacks:")
    if any(attention.values()):
        parts = [counted(n, noun) for noun, n in (
            ("interrupted batch", attention["interrupted_batches"]), ("failed batch", attention["failed_batches"]),
            ("paused batch", attention["paused_batches"]), ("orphaned draft", attention["orphaned_drafts"])) if n]
        c2.page_link("app_pages/recovery.py", label=f"{', '.join(parts)} → Recovery", icon=":material/healing:")


@st.cache_data(ttl=10, show_spinner=False)
def _stats_24h(url: str, viewer: Actor, since: datetime) -> dict[str, int]:
    with acting_as(viewer):  # the rows counted are the ones `viewer` may see: they are part of the key
        return error_stats(get_engine(url), since=since, bucket="hour")["by_severity"]


def errors_24h() -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    counts = _stats_24h(get_settings().effective_database_url, current_person(), since)
    by_sev = {str(sev): counts.get(sev, 0) for sev in _ERROR_SEVERITIES}
    cols = st.columns(len(by_sev))
    for col, (sev, n) in zip(cols, by_sev.items(), strict=True):
        col.metric(literal(sev), f"{n:,}", border=True)
    if not any(by_sev.values()):
        st.caption("No errors in the last 24 hours.")
    st.page_link("app_pages/errors.py", label="Open Errors", icon=":material/bug_report:")


def unfinished_drafts() -> None:
    """The latest few unfinished drafts with Resume, and how many there are in all (Generate lists them all)."""
    page = unfinished_drafts_page(get_engine(), page_size=HOME_DRAFTS)
    if not page.total:
        st.caption("No unfinished drafts.")
        return
    for d in page.rows:
        state = (f"stopped by an error: {d.get('error_message') or 'no reason saved'}" if d["status"] == "failed"
                 else d["status"].replace("_", " "))
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"{literal((d.get('params') or {}).get('topic', ''))} — {d.get('progress', 0):.0%} written, "
                    f"{literal(state)}")
        if c2.button("Resume", key=f"home.resume_draft_{d['id']}", icon=":material/play_arrow:"):
            start_job(DraftSession.load(get_engine(), d["id"]))
            st.switch_page("app_pages/generate.py")
    st.page_link("app_pages/generate.py", label=f"Resume or discard {counted(page.total, 'draft')} in Generate",
                 icon=":material/edit_note:")
