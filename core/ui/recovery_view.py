"""The Recovery wizard's pieces: what stopped, why, what to do (one click), and cleanup with a preview."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import drafts, recovery
from core.batches import service as batches
from core.config import get_settings
from core.errors import AppError
from core.store import get_engine
from core.ui.boundaries import callback, section_key
from core.ui.generate_view import start_job
from core.ui.safe import literal
from core.ui.toasts import notify_exception, success
from core.ui.user import current_user
from core.wording import counted

__all__ = ["batches_step", "cleanup_step", "conversations_step", "drafts_step", "findings"]

_K = "recovery"
_TITLES = {"interrupted_batches": "Interrupted", "failed_batches": "Failed", "paused_batches": "Paused"}


def _key(name: str) -> str:
    return section_key(_K, name)


@st.cache_data(ttl=3, show_spinner=False)
def _scan(url: str) -> dict[str, list[dict[str, Any]]]:
    return recovery.scan(get_engine(url))


def findings() -> dict[str, list[dict[str, Any]]]:
    return _scan(get_settings().effective_database_url)


@callback
def _run(label: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result = fn(get_engine(), *args, user=current_user(), **kwargs)
    except AppError as exc:
        notify_exception(exc, component=f"ui.recovery.{label.lower().replace(' ', '_')}")
        return
    _scan.clear()
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


def batches_step(found: dict[str, list[dict[str, Any]]]) -> None:
    rows = [(kind, f) for kind in _TITLES for f in found.get(kind, [])]
    if not rows:
        st.success("No interrupted, failed or paused batches.", icon=":material/check_circle:")
        return
    for kind, f in rows:
        with st.container(border=True):
            st.markdown(f"**{_TITLES[kind]}: {literal(f['details'].get('name') or f['id'])}**  \n"
                        f"What happened: {literal(f['what_happened'])}  \n"
                        f"**Recommended:** {literal(f['recommended_action'])}")
            _batch_buttons(f)


def _resume_draft(draft_id: str) -> None:
    start_job(drafts.DraftSession.load(get_engine(), draft_id))
    st.switch_page("app_pages/generate.py")


def drafts_step(found: dict[str, list[dict[str, Any]]]) -> None:
    rows = found.get("orphaned_drafts", [])
    if not rows:
        st.success("No orphaned drafts.", icon=":material/check_circle:")
        return
    for f in rows:
        with st.container(border=True):
            st.markdown(f"What happened: {literal(f['what_happened'])}  \n"
                        f"**Recommended:** {literal(f['recommended_action'])}")
            c1, c2, _ = st.columns([1, 1, 3])
            if c1.button("Resume", key=_key(f"draft_resume_{f['id']}"), type="primary", icon=":material/play_arrow:"):
                _resume_draft(f["id"])
            if c2.button("Discard", key=_key(f"draft_discard_{f['id']}"), icon=":material/delete:"):
                drafts.discard_draft(get_engine(), f["id"])
                _scan.clear()
                st.rerun()


def conversations_step(found: dict[str, list[dict[str, Any]]]) -> None:
    rows = found.get("orphaned_conversations", [])
    if not rows:
        st.success("Every saved conversation agrees with its batch item or draft.", icon=":material/check_circle:")
        return
    for f in rows[:50]:
        st.markdown(f"- {literal(f['what_happened'])} **Recommended:** {literal(f['recommended_action'])}")


def cleanup_step() -> None:
    """Show how many rows would go, then ask to confirm before removing anything."""
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
        success("Removed " + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in removed.items()) + ".")
        st.rerun()
