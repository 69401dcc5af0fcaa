"""The Audit page's pieces (admins only): filters, the server-paged trail, one event's detail.

Who did it is shown by their current name (core.auth.users.names_of), else the label the row kept;
names, labels, target ids and details are untrusted text: cells of the table, or `literal` / st.json.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core.auth.audit import SYSTEM, AuditAction, AuditFilter, list_audit_events, target_kinds
from core.auth.users import list_users, names_of
from core.store import get_engine
from core.ui.boundaries import section_key
from core.ui.table_state import TableState
from core.ui.timefmt import exact
from core.wording import counted

__all__ = ["detail", "filters", "listing"]

_K = "audit"
_PAGE_SIZE = 50
_ANYONE = ""
_SPANS: dict[str, timedelta | None] = {
    "All time": None, "Last hour": timedelta(hours=1), "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7), "Last 30 days": timedelta(days=30),
}
_COLUMN_CONFIG = {"When": st.column_config.DatetimeColumn("When", format="distance")}


def _key(name: str) -> str:
    return section_key(_K, name)


def filters() -> AuditFilter:
    """The filter bar: who, which actions, what target (kind and id, or its first characters), when."""
    engine = get_engine()
    people = {u["id"]: (u["name"] or u["email"] or u["id"][:8]) for u in list_users(engine)}
    whos = {_ANYONE: "Anyone", SYSTEM: "The system", **people}
    c1, c2, c3 = st.columns([2, 3, 2])
    who = c1.selectbox("Who", list(whos), key=_key("who"), format_func=whos.__getitem__)
    actions = c2.multiselect("Action", [a.value for a in AuditAction], key=_key("actions"),
                             placeholder="Every action")
    span = c3.selectbox("When", list(_SPANS), key=_key("span"))
    c4, c5 = st.columns([2, 3])
    kind = c4.selectbox("Target", ["", *target_kinds(engine)], key=_key("kind"),
                        format_func=lambda k: k or "Any target")
    target = c5.text_input("Target id", key=_key("target"), max_chars=64,
                           help="The id, or its first characters (pages show the first 8).")
    delta = _SPANS[span]
    return AuditFilter(actor_id=who or None, actions=tuple(actions), target_kind=kind or None,
                       target_id=target.strip() or None,
                       since=datetime.now(UTC) - delta if delta else None)


def _signature(flt: AuditFilter) -> tuple[Any, ...]:
    """The filter as the person set it ("When" by its name: its start moves with the clock)."""
    return dataclasses.replace(flt, since=None), st.session_state.get(_key("span"))


def _detail_text(detail: Any) -> str:
    return "" if not detail else json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)[:300]


def listing(flt: AuditFilter) -> dict[str, Any] | None:
    """One page of the matching events, newest first; the selected event (None for none)."""
    engine = get_engine()
    state = TableState(_key("rows"), _signature(flt))
    page = state.load(lambda n: list_audit_events(engine, flt, page=n, page_size=_PAGE_SIZE))
    if not page.rows:
        st.info("No audit events match.", icon=":material/history_edu:")
        return None
    names = names_of(engine, (r["actor_id"] for r in page.rows))
    frame = pd.DataFrame([{
        "When": r["created_at"], "At (UTC)": exact(r["created_at"]),
        "Who": "system" if r["actor_id"] is None else names.get(r["actor_id"], r["actor_label"] or r["actor_id"][:8]),
        "Action": r["action"], "Target": r["target_kind"], "Target id": (r["target_id"] or "")[:12],
        "Detail": _detail_text(r["detail"])} for r in page.rows])
    picked = state.grid(frame, [str(r["id"]) for r in page.rows], hide_index=True, column_config=_COLUMN_CONFIG)
    state.pager(page, prefix=_key(""), caption=f"{counted(page.total, 'event')} · page {page.page} of {page.pages}",
                compact=True)
    return next((r for r in page.rows if str(r["id"]) == picked.id), None)


def detail(event: dict[str, Any] | None) -> None:
    """The selected event in full: target id and detail as data, never as Markdown."""
    if event is None:
        st.caption("Select a row to see its full detail.")
        return
    st.json({"at": exact(event["created_at"]), "who": event["actor_label"], "who_id": event["actor_id"],
             "action": event["action"], "target": event["target_kind"], "target_id": event["target_id"],
             "detail": event["detail"]})
