"""The Conversations page's pieces: filters, the paged list, one conversation as a chat, the dataset export."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core import conversations as convs
from core.auth.users import names_of
from core.batches import service as batches
from core.datasets import (
    FORMAT_LABELS,
    FORMATS,
    STATUSES,
    SYSTEM_POLICIES,
    DatasetExport,
    ExportSpec,
    train_target,
)
from core.errors import ValidationError
from core.generation import get_template, template_names
from core.store import get_engine
from core.ui.boundaries import section_key
from core.ui.downloads import limit_bytes, limit_note
from core.ui.health_charts import STATE_LABELS
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.timefmt import ago, exact
from core.wording import counted

__all__ = ["chat", "exports", "filters", "listing"]

_K = "conversations"
_PAGE_SIZE = 25
_RANGES = {"All time": None, "Last 24 hours": timedelta(days=1), "Last 7 days": timedelta(days=7),
           "Last 30 days": timedelta(days=30)}


def _key(name: str) -> str:
    return section_key(_K, name)


_SOURCES = ["All", "Single generations", "A batch"]


def filters() -> convs.ConversationFilter | None:
    """The filter the page lists and exports; None (with a hint) while "A batch" has no batch chosen."""
    _follow_link(st.query_params.get("batch", ""))
    c1, c2, c3 = st.columns(3)
    template = c1.selectbox("Template", ["All", *template_names()], key=_key("template"),
                            format_func=lambda n: n if n == "All" else get_template(n).title)
    span = c2.selectbox("Created", list(_RANGES), key=_key("range"))
    source = c3.selectbox("Source", _SOURCES, key=_key("source"))
    batch_id = _batch_choice() if source == "A batch" else None
    if source == "A batch" and batch_id is None:
        return None
    delta = _RANGES[span]
    return convs.ConversationFilter(
        template=None if template == "All" else template,
        since=datetime.now(UTC) - delta if delta else None,
        draft_only=source == "Single generations",
        batch_id=batch_id,
    )


def _follow_link(linked: str) -> None:
    """A new ?batch=<id> (a batch card's link) sets the filters to that batch once; later changes are the person's."""
    if linked and st.session_state.get(_key("linked")) != linked:
        st.session_state[_key("linked")] = linked
        st.session_state[_key("source")] = "A batch"
        st.session_state[_key("batch")] = linked


def _batch_choice() -> str | None:
    """The batch picked by name, or typed as its id (the first 8 characters are enough); None until one is."""
    named = {b["id"]: b for b in batches.batch_names(get_engine())}
    c1, c2 = st.columns(2)
    typed = c2.text_input("…or its id", key=_key("batch"),
                          help="The full id, or its first 8 characters as the Batches page shows them.")
    picked = c1.selectbox("Batch", list(named), index=None, key=_key("batch_pick"), placeholder="Choose by name",
                          format_func=lambda i: f"{named[i]['name']} · {i[:8]} · {ago(named[i]['created_at'])}",
                          disabled=bool(typed.strip()))
    if typed.strip():
        try:
            return batches.resolve_batch_id(get_engine(), typed)
        except ValidationError as exc:
            c2.error(literal(exc.user_message), icon=":material/error:")
            return None
    if picked is None:
        st.info("Choose a batch by name or give its id to see its conversations.", icon=":material/stacks:")
    return picked


def _signature(flt: convs.ConversationFilter) -> tuple[Any, ...]:
    """The filter as the person set it: "Created" by its name, since its start moves with the clock."""
    return (dataclasses.replace(flt, since=None), st.session_state.get(_key("range")))


_COLUMN_CONFIG = {
    "When": st.column_config.DatetimeColumn("When", format="distance", help="How long ago; the exact time is beside it"),
    "Cost ($)": st.column_config.NumberColumn("Cost ($)", format="%.4f"),
    "Review": st.column_config.TextColumn("Review", help="Its review state (the quality gate's or a reviewer's) "
                                                        "and its quality score, 0-100"),
}


def _review(row: Any) -> str:
    """The review state and the score in one cell, e.g. 'accepted · 92' (a missing score is said, not 'None')."""
    score = row["quality_score"]
    return f"{STATE_LABELS.get(row['review_status'], row['review_status'])} · " + (
        "not scored" if score is None else str(score))


def listing(flt: convs.ConversationFilter) -> str | None:
    """One page of the filtered conversations; the id of the one to read (the selected row, else the first)."""
    state = TableState(_key("rows"), _signature(flt))
    page = state.load(lambda n: convs.list_conversations(get_engine(), flt, page=n, page_size=_PAGE_SIZE))
    if not page.rows:
        st.info("No conversations match. Generate one, or run a batch.", icon=":material/forum:")
        return None
    names = names_of(get_engine(), (r["owner_id"] for r in page.rows))
    frame = pd.DataFrame([{
        "When": r["created_at"], "Created (UTC)": exact(r["created_at"]),
        "Review": _review(r), "Template": r["template"],
        "Persona": (r["params"] or {}).get("persona") or "", "Topic": (r["params"] or {}).get("topic") or "",
        "By": names.get(r["owner_id"] or "") or r["created_by"] or "",
        "Turns": r["turn_count"], "Tokens": r["input_tokens"] + r["output_tokens"], "Cost ($)": r["cost_usd"],
        "Batch": (r["batch_id"] or "")[:8], "Id": r["id"][:8]} for r in page.rows])
    picked = state.grid(frame, [r["id"] for r in page.rows], hide_index=True, column_config=_COLUMN_CONFIG)
    state.pager(page, prefix=_key(""), caption=f"{counted(page.total, 'conversation')} · page {page.page} of {page.pages}",
                compact=True)
    if picked.id is None:
        st.caption("Showing the first one; select a row to read another.")
    return picked.id or page.rows[0]["id"]


def chat(conversation_id: str | None) -> None:
    if not conversation_id:
        return
    row = convs.get_conversation(get_engine(), conversation_id)
    if row is None:
        st.warning("That conversation is no longer there.")
        return
    params: dict[str, Any] = row["params"] or {}
    title = get_template(row["template"]).title if row["template"] in template_names() else row["template"]
    st.markdown(f"**{literal(title)}** · {literal(params.get('persona', ''))} · {literal(params.get('emotion', ''))}"
                f" · {literal(params.get('topic', ''))} · {literal(row['model'])} · {row['turn_count']} turns · "
                f"\\${row['cost_usd']:.4f}")
    if row["system_prompt"]:
        with st.expander("System prompt"):
            st.markdown(literal(row["system_prompt"]))
    for turn in row["turns"] or []:
        with st.chat_message("user" if turn["role"] == "user" else "assistant"):
            st.markdown(literal(turn["content"]))


_STATUS_LABELS = {"accepted": "Accepted only", "needs_review": "Needs review", "rejected": "Rejected",
                  "all": "Every status"}
_POLICY_LABELS = {"keep": "Keep it", "drop": "Drop it", "replace": "Replace it"}


def exports(flt: convs.ConversationFilter) -> None:
    """The filtered set as a trainer-ready dataset: format, status, split, system prompt, its size; a zip with a card.

    The zip is built when clicked, on another thread, after this run: the export keeps this run's
    person, and writes its audit row when the zip is built.
    """
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", FORMATS, format_func=FORMAT_LABELS.__getitem__, key=_key("format"))
    status = c2.selectbox("Review status", STATUSES, format_func=_STATUS_LABELS.__getitem__, key=_key("status"),
                          help="Accepted only by default: what passed the checks or a reviewer.")
    split_on = c3.toggle("Train / validation split", key=_key("split_on"),
                         help="Duplicates of each other stay on one side, so validation never holds a copy of "
                              "a training conversation.")
    ratio = c3.slider("Train share", min_value=0.05, max_value=0.95, value=0.9, step=0.05, key=_key("split"),
                      disabled=not split_on)
    policy = st.radio("System prompt", SYSTEM_POLICIES, format_func=_POLICY_LABELS.__getitem__, horizontal=True,
                      key=_key("system_prompt"))
    text = st.text_area("Replacement system prompt", key=_key("system_text"),
                        placeholder="Every exported conversation gets this system prompt.") if policy == "replace" else ""
    hint = st.empty()
    try:
        spec = ExportSpec(format=fmt, status=status, split=ratio if split_on else None, system_prompt=policy,
                          system_text=text or None, card=True)
    except ValidationError as exc:
        hint.error(literal(exc.user_message), icon=":material/error:")
        spec = None
    if spec is None:
        st.download_button("Download dataset", data=b"", key=_key("download"), disabled=True,
                           icon=":material/download:")
        return
    export = DatasetExport(get_engine(), flt, spec, via="download")
    held = _held(export)
    st.download_button("Download dataset", data=lambda: export.archive(limit_bytes()),
                       file_name=f"conversations-{fmt}.zip", mime="application/zip", key=_key("download"),
                       icon=":material/download:", on_click="ignore", disabled=not held)
    st.caption(f"A zip of {', '.join(export.file_names())}: the dataset card describes what the files hold and "
               "how they were chosen.")
    limit_note(export.cli_command())


_HOLDING = {"accepted": "accepted", "needs_review": "needing review", "rejected": "rejected",
            "regenerate": "to regenerate"}


def _held(export: DatasetExport) -> int:
    """Say how many conversations the export will hold (and how the split shares them) before it is downloaded."""
    counts = export.status_counts()
    total, status = sum(counts.values()), export.spec.status
    n = total if status == "all" else counts.get(status, 0)
    if not total:
        st.info("No conversation matches the filters, so there is nothing to export.", icon=":material/forum:")
        return 0
    if not n:
        others = ", ".join(f"{k:,} {_HOLDING.get(s) or literal(s)}" for s, k in sorted(counts.items()))
        st.warning(f"No conversation the filters match is {_HOLDING[status]} (of {counted(total, 'conversation')}: "
                   f"{others}): choose another review status, or every status.", icon=":material/filter_alt_off:")
        return 0
    which = f"all {counted(n, 'conversation')} the filters match" if status == "all" else (
        f"{counted(n, 'conversation')} {_HOLDING[status]}, of the {counted(total, 'conversation')} the filters match")
    split = ""
    if export.spec.split is not None:
        train = train_target(export.spec.split, n)
        split = (f": about {train:,} for training and {n - train:,} for validation (duplicates stay together on "
                 "one side, so the sides can differ from this by a few)")
        if n > 1 and train in (0, n):
            split += (f". At a train share of {export.spec.split:.2f} the {'validation' if train else 'training'} "
                      "file would be empty: move the slider")
    st.markdown(f"The export holds **{which}**{split}.")
    return n
