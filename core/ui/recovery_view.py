"""The Recovery wizard's pieces: what stopped, why, what to do (one click), and cleanup with a preview.

Each list is paged by its service and shown through the one table state: a filter sends it back
to page 1 with nothing selected, and its footer counts every row, not the ones on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core import drafts, recovery
from core.auth import Actor, acting_as
from core.batches import service as batches
from core.config import get_settings
from core.errors import AppError
from core.store import get_engine
from core.ui.boundaries import callback, section_key
from core.ui.generate_view import start_job
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.toasts import notify_exception, success
from core.ui.user import current_person
from core.wording import counted

__all__ = ["batches_step", "cleanup_step", "conversations_step", "drafts_step", "summary"]

_K = "recovery"
_TITLES = {"interrupted_batch": "Interrupted", "failed_batch": "Failed", "paused_batch": "Paused"}
_BATCH_CHOICES = {"All": recovery.STOPPED_BATCH_KINDS, "Interrupted": ("interrupted_batches",),
                  "Failed": ("failed_batches",), "Paused": ("paused_batches",)}
_REASON_WORDS = {"item_not_done": "Item not marked done", "batch_deleted": "Batch deleted",
                 "draft_missing": "Draft missing"}
_REASON_CHOICES = {"All": recovery.ORPHAN_REASONS, **{words: (r,) for r, words in _REASON_WORDS.items()}}
_NOUNS = {"interrupted_batches": ("interrupted batch", "interrupted batches"),
          "failed_batches": ("failed batch", "failed batches"), "paused_batches": ("paused batch", "paused batches"),
          "orphaned_drafts": ("draft left open", "drafts left open"),
          "orphaned_conversations": ("conversation out of step", "conversations out of step")}


def _key(name: str) -> str:
    return section_key(_K, name)


def _lists() -> dict[str, Callable[..., Any]]:
    return {"batches": recovery.stopped_batches_page, "drafts": recovery.orphaned_drafts_page,
            "conversations": recovery.orphaned_conversations_page}


@st.cache_data(ttl=3, show_spinner=False)
def _page(url: str, viewer: Actor, name: str, choice: tuple[str, ...], page: int, size: int) -> Any:
    """Page `page` of the list `name` (narrowed to `choice`, where it has a filter) as `viewer` sees it; cached
    for a few seconds (the viewer is part of the key)."""
    fetch = _lists()[name]
    with acting_as(viewer):
        return fetch(get_engine(url), *([choice] if choice else []), page=page, page_size=size)


@st.cache_data(ttl=3, show_spinner=False)
def _summary(url: str, viewer: Actor) -> dict[str, int]:
    with acting_as(viewer):  # what `viewer` may see of batches, drafts and conversations: part of the key
        return recovery.summary(get_engine(url))


def _refresh() -> None:
    """After an action: every list and count read again."""
    _page.clear()
    _summary.clear()


def summary() -> None:
    """How many of each kind there are in all, above the lists."""
    counts = _summary(get_settings().effective_database_url, current_person())
    st.markdown(" · ".join(f"**{n:,}** {_NOUNS[k][0] if n == 1 else _NOUNS[k][1]}" for k, n in counts.items()))


def _load(name: str, choice: tuple[str, ...], size: int) -> tuple[TableState, Any]:
    """The list's table state (reset when `choice` changes) and its current page."""
    state = TableState(_key(f"{name}_list"), choice)
    url, viewer = get_settings().effective_database_url, current_person()
    return state, state.load(lambda n: _page(url, viewer, name, choice, n, size))


@callback
def _run(label: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result = fn(get_engine(), *args, **kwargs)
    except AppError as exc:
        notify_exception(exc, component=f"ui.recovery.{label.lower().replace(' ', '_')}")
        return
    _refresh()
    success(f"{label}: done ({counted(result, 'item')})." if isinstance(result, int) else f"{label}: done.")


def _batch_buttons(f: dict[str, Any]) -> None:
    bid, action = f["id"], f["action"]
    options: list[tuple[str, str, Any, dict[str, Any]]] = []
    if f["kind"] == "failed_batch" and f["details"].get("failed"):
        options.append(("Retry failed", ":material/replay:", batches.resume_batch, {"failed_only": True}))
    options.append(("Resume", ":material/play_arrow:", batches.resume_batch, {}))
    options.append(("Cancel (discard the rest)", ":material/cancel:", batches.cancel_batch, {}))
    recommended = {"retry_failed": "Retry failed", "resume": "Resume"}.get(action)
    cols = st.columns(len(options) + 1)
    for col, (label, icon, fn, kw) in zip(cols, options, strict=False):
        col.button(label, key=_key(f"{label}_{bid}"), icon=icon, type="primary" if label == recommended else
                   "secondary", on_click=_run, args=(label, fn, bid), kwargs=kw)
    cols[-1].page_link("app_pages/batches.py", label="Open", icon=":material/open_in_new:", query_params={"batch": bid})


def batches_step() -> None:
    """Interrupted, failed and paused batches, a page of cards at a time, each with its one-click actions."""
    shown = st.segmented_control("Show", list(_BATCH_CHOICES), default="All", key=_key("batch_kind")) or "All"
    state, page = _load("batches", _BATCH_CHOICES[shown], get_settings().ui_cards_page_size)
    if not page.total:
        st.success("No interrupted, failed or paused batches." if shown == "All" else
                   f"No {shown.lower()} batches.", icon=":material/check_circle:")
        return
    for f in page.rows:
        with st.container(border=True):
            st.markdown(f"**{_TITLES[f['kind']]}: {literal(f['details'].get('name') or f['id'])}**  \n"
                        f"What happened: {literal(f['what_happened'])}  \n"
                        f"**Recommended:** {literal(f['recommended_action'])}")
            _batch_buttons(f)
    state.footer(page, "batch", prefix=_key("batches_"))


def _resume_draft(draft_id: str) -> None:
    start_job(drafts.DraftSession.load(get_engine(), draft_id))
    st.switch_page("app_pages/generate.py")


def drafts_step() -> None:
    """Drafts nobody saved for a while, a page at a time: resume or discard each."""
    state, page = _load("drafts", (), get_settings().ui_cards_page_size)
    if not page.total:
        st.success("No orphaned drafts.", icon=":material/check_circle:")
        return
    for f in page.rows:
        with st.container(border=True):
            st.markdown(f"What happened: {literal(f['what_happened'])}  \n"
                        f"**Recommended:** {literal(f['recommended_action'])}")
            c1, c2, _ = st.columns([1, 1, 3])
            if c1.button("Resume", key=_key(f"draft_resume_{f['id']}"), type="primary", icon=":material/play_arrow:"):
                _resume_draft(f["id"])
            if c2.button("Discard", key=_key(f"draft_discard_{f['id']}"), icon=":material/delete:"):
                drafts.discard_draft(get_engine(), f["id"])
                _refresh()
                st.rerun()
    state.footer(page, "draft", prefix=_key("drafts_"))


_ROW_PX = 35  # a grid row's height in Streamlit's dataframe
_CONVERSATION_COLUMNS = {
    "What happened": st.column_config.TextColumn("What happened", width="large"),
    "Recommended": st.column_config.TextColumn("Recommended", width="large"),
}


def conversations_step() -> None:
    """Conversations out of step with their batch item or draft, paged; a selected row shows its ids and links."""
    reason = st.columns([1, 2])[0].selectbox("Why", list(_REASON_CHOICES), key=_key("reason"),
                                             format_func=lambda r: "Every reason" if r == "All" else r)
    state, page = _load("conversations", _REASON_CHOICES[reason], get_settings().ui_table_page_size)
    if not page.total:
        st.success("Every saved conversation agrees with its batch item or draft." if reason == "All" else
                   "No conversation is out of step for this reason.", icon=":material/check_circle:")
        return
    frame = pd.DataFrame([{"Conversation": f["id"][:8], "Why": _REASON_WORDS[f["details"]["reason"]],
                           "What happened": f["what_happened"], "Recommended": f["recommended_action"]}
                          for f in page.rows])
    # tall enough for the whole page of rows: the pager below is the only scrolling through them
    picked = state.grid(frame, [f["id"] for f in page.rows], hide_index=True, column_config=_CONVERSATION_COLUMNS,
                        height=_ROW_PX * (len(frame) + 1) + 3)
    state.footer(page, "conversation", prefix=_key("conversations_"))
    chosen = next((f for f in page.rows if f["id"] == picked.id), None)
    if chosen is None:
        st.caption("Select a row for its full ids and a link to its batch.")
        return
    with st.container(border=True, key=_key("conversation_detail")):
        st.markdown(f"{literal(chosen['what_happened'])}  \n**Recommended:** {literal(chosen['recommended_action'])}")
        st.caption("Conversation id")
        st.code(chosen["id"], language="text")
        batch_id = chosen["details"].get("batch_id")
        if batch_id:
            st.page_link("app_pages/batches.py", label="Open its batch", icon=":material/stacks:",
                         query_params={"batch": batch_id})


def cleanup_step() -> None:
    """Show how many rows would go, then ask to confirm before removing anything (admins only)."""
    if not recovery.may_clean_up():
        st.caption("An admin cleans up expired data (the workers also do it on their interval).")
        return
    preview = recovery.cleanup_preview(get_engine())
    total = sum(preview.values())
    st.markdown("Expired data that cleanup would remove now: " + " · ".join(
        f"**{n:,}** {name.replace('_', ' ')}" for name, n in preview.items()))
    if not total:
        st.caption("Nothing has expired.")
        return
    confirmed = st.checkbox(f"Yes, remove these {total:,} rows", key=_key("confirm_cleanup"))
    if st.button(f"Clean up {total:,} rows", key=_key("cleanup"), disabled=not confirmed, icon=":material/delete_sweep:"):
        removed = recovery.apply_cleanup(get_engine())
        st.session_state.pop(_key("confirm_cleanup"), None)
        _refresh()
        success("Removed " + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in removed.items()) + ".")
        st.rerun()
