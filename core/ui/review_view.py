"""The Review page's pieces: filters, the current conversation of the queue with its evidence, decisions, bulk.

The queue is read a conversation at a time (a page of one, through TableState): Next / Previous
move along it, and a decision takes the conversation out of the queue, so the same position then
shows the next one. Keyboard: a accept, r reject, e edit, j next, k previous. Streamlit's own
button shortcuts serve a, e, j and k; it reserves r (its rerun key) for itself, so a small
constant script catches a bare r (outside text fields) before Streamlit does and clicks Reject.

Every text of a conversation (turns, check details, the shared passage, the judge's reasons) is
redacted, then shown through `literal` or as a table cell.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
import streamlit as st

from core import review
from core.batches import service as batches
from core.errors import ValidationError
from core.generation import get_template, template_names
from core.quality import thresholds
from core.redact import redact_cut, redact_text
from core.store import get_engine
from core.ui.boundaries import callback, section_key
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.timefmt import ago, exact
from core.ui.toasts import success
from core.wording import counted

__all__ = ["bulk", "filters", "keyboard", "queue"]

_K = "review"
_CELL_MAX = 300
_VERB = {"accepted": "Accept", "rejected": "Reject"}



def _key(name: str) -> str:
    return section_key(_K, name)


def keyboard() -> None:
    """The r-for-Reject key (see the module docstring) and the list of shortcuts."""
    # Streamlit reserves "r" (rerun) for itself: catch a bare r before it does, outside text fields, and
    # click Reject when the page shows it. A constant: nothing of a conversation is in it.
    st.html("""<script>
    (() => {
      if (window.__studioReviewKeys) return;
      window.__studioReviewKeys = true;
      window.addEventListener("keydown", (event) => {
        if (event.key !== "r" || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
        const target = event.target;
        if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
        const button = document.querySelector(".st-key-review-reject button");
        if (!button || button.disabled) return;
        event.preventDefault();
        event.stopImmediatePropagation();
        button.click();
      }, true);
    })();
    </script>""", unsafe_allow_javascript=True)
    st.caption("Keys: **a** accept · **r** reject · **e** edit · **j** next · **k** previous")


def filters() -> review.ReviewFilter:
    """The queue's filters: batch, template, a failed check and the score range."""
    named = {b["id"]: b for b in batches.batch_names(get_engine())}
    c1, c2, c3, c4 = st.columns([2, 2, 1.5, 2])
    batch_id = c1.selectbox("Batch", list(named), index=None, key=_key("batch"), placeholder="All",
                            format_func=lambda i: f"{redact_cut(named[i]['name'] or '', 60)} · {i[:8]} · "
                                                  f"{ago(named[i]['created_at'])}")
    names = template_names()
    template = c2.selectbox("Template", names, index=None, key=_key("template"), placeholder="All",
                            format_func=lambda n: get_template(n).title)
    check = c3.text_input("Failed check", key=_key("check"), max_chars=64, placeholder="any",
                          help="Only conversations that failed the check of this name.").strip()
    low, high = c4.slider("Score", 0, 100, (0, 100), key=_key("score"))
    return review.ReviewFilter(batch_id=batch_id, template=template, failed_check=check or None,
                               min_score=low if low > 0 else None, max_score=high if high < 100 else None)


def queue(flt: review.ReviewFilter) -> None:
    """The current conversation of the queue: position, moves, the chat, its evidence, the decisions."""
    state = TableState(_key("queue"), tuple(sorted(flt.describe().items())))
    page = state.load(lambda n: review.review_page(get_engine(), flt, page=n, page_size=1))
    if not page.rows:
        st.success("Nothing needs review here: no conversation in the queue matches the filters.",
                   icon=":material/task_alt:")
        return
    row = page.rows[0]
    cid = row["id"]
    where, moves = st.columns([4, 3], vertical_alignment="center")
    where.markdown(f"**Conversation {page.page:,} of {page.total:,}** in the queue · made {ago(row['created_at'])} "
                   f"({literal(exact(row['created_at']))}) · id {literal(cid[:8])}")
    with moves, _buttons(align="right"):
        st.button("Previous", key=_key("prev"), icon=":material/chevron_left:", shortcut="K",
                  disabled=page.page <= 1, on_click=state.go_to, args=(page.page - 1,))
        st.button("Next", key=_key("next"), icon=":material/chevron_right:", shortcut="J",
                  disabled=page.page >= page.pages, on_click=state.go_to, args=(page.page + 1,))
    left, right = st.columns([3, 2])
    editing = st.session_state.get(_key("editing")) == cid
    with left:
        _chat(row, editing)
    with right:
        _decisions(cid, editing)
        _evidence(row)


def _chat(row: dict[str, Any], editing: bool) -> None:
    params: dict[str, Any] = row["params"] or {}
    st.markdown(" · ".join(literal(redact_text(str(params.get(k) or "")), 120)
                           for k in ("persona", "emotion", "topic")) +
                f" · {literal(row['template'])} · {literal(row['model'])} · {row['turn_count']} turns")
    if row["system_prompt"]:
        with st.expander("System prompt"):
            st.markdown(literal(redact_text(row["system_prompt"])))
    if row["original_turns"] is not None:
        st.caption("A reviewer edited this conversation; the turns as generated are kept.")
    for i, turn in enumerate(row["turns"] or []):
        role = "user" if turn["role"] == "user" else "assistant"
        with st.chat_message(role):
            text = redact_text(str(turn.get("content") or ""))
            if not editing:
                st.markdown(literal(text))
                continue
            with st.form(key=_key(f"edit_{row['id']}_{i}"), border=False):
                st.text_area(f"Turn {i + 1} ({role})", value=text, key=_key(f"text_{row['id']}_{i}"), height=120)
                st.form_submit_button(f"Save turn {i + 1}", icon=":material/save:", on_click=_save_turn,
                                      args=(row["id"], i))


def _decisions(cid: str, editing: bool) -> None:
    st.text_input("Note (kept with the decision)", key=_key(f"note_{cid}"), max_chars=500,
                  placeholder="optional")
    with _buttons():
        st.button("Accept", key=_key("accept"), type="primary", icon=":material/check:", shortcut="A",
                  on_click=_decide, args=(cid, "accepted"))
        st.button("Reject", key=_key("reject"), icon=":material/close:", help="Key: r",
                  on_click=_decide, args=(cid, "rejected"))
        st.button("Done editing" if editing else "Edit", key=_key("edit"), icon=":material/edit:", shortcut="E",
                  on_click=_toggle_edit, args=(cid,))


@callback
def _decide(cid: str, decision: str) -> None:
    note = st.session_state.get(_key(f"note_{cid}")) or None
    review.decide(get_engine(), [cid], decision, note)
    st.session_state.pop(_key("editing"), None)
    success(f"{decision.capitalize()} conversation {literal(cid[:8])}.")


@callback
def _toggle_edit(cid: str) -> None:
    st.session_state[_key("editing")] = None if st.session_state.get(_key("editing")) == cid else cid


@callback
def _save_turn(cid: str, index: int) -> None:
    text = str(st.session_state.get(_key(f"text_{cid}_{index}")) or "")
    note = st.session_state.get(_key(f"note_{cid}")) or None
    try:
        review.edit_turn(get_engine(), cid, index, text, note)
    except ValidationError as exc:
        st.session_state[_key("edit_error")] = exc.user_message
        return
    st.session_state.pop(_key("edit_error"), None)
    success(f"Saved turn {index + 1}; the turns as generated are kept.")


def _evidence(row: dict[str, Any]) -> None:
    """Score with its parts, the checks (failed ones named), a duplicate and the judge's reasons."""
    problem = st.session_state.pop(_key("edit_error"), None)
    if problem:
        st.error(literal(problem), icon=":material/error:")
    score = row["quality_score"]
    why = why_in_queue(row)
    if why:
        st.info(why, icon=":material/help:")
    st.metric("Score", "not scored" if score is None else f"{score} / 100")
    parts = row["score_parts"] or {}
    if parts:  # a line, not a table: a grid costs the browser more than the rest of the next conversation
        st.caption(" · ".join(f"{literal(redact_cut(str(k), 60))} {literal(v)}" for k, v in parts.items()))
    checks = [c for c in (row["checks"] or []) if isinstance(c, dict)]
    failed = [c for c in checks if not c.get("passed", True)]
    if failed:
        st.markdown("**Failed checks**")
        for c in failed:
            hard = " (hard)" if c.get("hard") else ""
            st.error(f"{literal(c.get('name'))}{hard}: {literal(redact_text(str(c.get('detail') or '')), _CELL_MAX)}",
                     icon=":material/rule:")
    if checks:
        passed = [str(c.get("name")) for c in checks if c.get("passed", True)]
        st.caption(f"{counted(len(passed), 'check')} passed" + (f": {literal(', '.join(passed))}" if passed else ""))
    else:
        st.caption("Not checked yet.")
    if row["duplicate_of"]:
        kind = "An exact duplicate" if row["duplicate_kind"] == "exact" else "A near-duplicate"
        similarity = f" (similarity {row['duplicate_similarity']:.2f})" if row["duplicate_similarity"] is not None else ""
        st.warning(f"{kind}{similarity} of conversation {literal(row['duplicate_of'][:8])}",
                   icon=":material/content_copy:")
        if row["duplicate_passage"]:
            with st.expander("The passage they share", expanded=True):
                st.markdown(literal(redact_text(row["duplicate_passage"])))
    _judge(row)


def why_in_queue(row: dict[str, Any]) -> str:
    """Why the quality gate sent this conversation to a person, in a sentence ('' once it is decided).

    A conversation waits for review when it duplicates another, when a hard check still failed
    after its regenerations, or when its score is under its template's accept score.
    """
    if row.get("review_status") != "needs_review":
        return ""
    reasons = []
    if row.get("duplicate_of"):
        kind = "exactly" if row.get("duplicate_kind") == "exact" else "nearly"
        reasons.append(f"it {kind} duplicates conversation {literal(str(row['duplicate_of'])[:8])}")
    hard = [str(c.get("name")) for c in (row.get("checks") or []) if isinstance(c, dict)
            and c.get("hard") and not c.get("passed", True)]
    if hard:
        reasons.append(f"a hard check still failed after its regenerations ({literal(', '.join(hard))})")
    score = row.get("quality_score")
    if score is not None:
        accept, _review = thresholds(row.get("params") or {}, get_engine())
        if score < accept:
            reasons.append(f"its score {score} is under the accept score {accept}")
    if not reasons:
        return "Sent here for a person to decide."
    return "In the queue because " + "; ".join(reasons) + "."


def _judge(row: dict[str, Any]) -> None:
    if row["judge_status"] == "failed":
        st.warning("The judge could not score this conversation.", icon=":material/gavel:")
    judge = row["judge"] or {}
    scores, reasons = judge.get("scores") or {}, judge.get("reasons") or {}
    if not scores and not reasons:
        return
    st.markdown("**Judge**")
    st.dataframe(pd.DataFrame([{"Criterion": redact_cut(str(k), 60), "Score": scores.get(k),
                                "Reason": redact_cut(str(reasons.get(k) or ""), _CELL_MAX)}
                               for k in dict.fromkeys([*scores, *reasons])]),
                 hide_index=True, key=_key(f"judge_{row['id']}"))


def bulk(flt: review.ReviewFilter) -> None:
    """Accept or reject everything the filters match, after a confirmation naming how many; with progress."""
    pending = st.session_state.pop(_key("bulk_run"), None)
    if pending is not None:
        _run_bulk(*pending)
        return
    for i, stopped in enumerate(review.interrupted_bulk(get_engine())):
        st.warning(f"An interrupted bulk {_VERB.get(stopped.decision, '?').lower()} of {_described(stopped.filter)} "
                   f"stopped after {counted(stopped.done, 'conversation')} (started {ago(stopped.started_at)}). "
                   "Resuming it decides the rest, with its first note and time.", icon=":material/pending_actions:")
        st.button("Resume", key=_key(f"resume_{i}"), icon=":material/play_arrow:", on_click=_confirm,
                  args=(stopped.decision, stopped.filter, review.count_to_decide(get_engine(), stopped.filter)))
    n = review.count_to_decide(get_engine(), flt)
    asked = st.session_state.get(_key("bulk_ask"))
    with _buttons():
        st.button(f"Accept all {n:,}…", key=_key("bulk_accept"), icon=":material/done_all:", disabled=not n,
                  on_click=_ask, args=("accepted",))
        st.button(f"Reject all {n:,}…", key=_key("bulk_reject"), icon=":material/remove_done:", disabled=not n,
                  on_click=_ask, args=("rejected",))
    if asked not in _VERB or not n:
        return
    st.warning(f"{_VERB[asked]} **{counted(n, 'conversation')}** that need review and match the filters? Each is "
               "recorded with you as the reviewer; an interrupted run resumes where it stopped.",
               icon=":material/warning:")
    st.text_input("Note for all of them", key=_key("bulk_note"), max_chars=500, placeholder="optional")
    with _buttons():
        st.button(f"Yes, {_VERB[asked].lower()} {n:,}", key=_key("bulk_confirm"), type="primary",
                  on_click=_confirm, args=(asked, flt, n))
        st.button("Cancel", key=_key("bulk_cancel"), on_click=_ask, args=(None,))


def _buttons(align: Literal["left", "right"] = "left") -> Any:
    """A row of buttons each as wide as its label, wrapping when the column is narrow: a label is never cut."""
    return st.container(horizontal=True, horizontal_alignment=align, vertical_alignment="center")


def _described(flt: review.ReviewFilter) -> str:
    """A filter in words, its values escaped: "batch 1a2b3c4d · template tutoring · score 20–80"."""
    parts = []
    if flt.batch_id:
        parts.append(f"batch {literal(flt.batch_id[:8])}")
    if flt.template:
        parts.append(f"template {literal(flt.template)}")
    if flt.failed_check:
        parts.append(f"failed check {literal(flt.failed_check, 64)}")
    if flt.min_score is not None or flt.max_score is not None:
        parts.append(f"score {flt.min_score or 0}–{100 if flt.max_score is None else flt.max_score}")
    return "the queue" + (f" ({' · '.join(parts)})" if parts else "")


def _ask(decision: str | None) -> None:
    st.session_state[_key("bulk_ask")] = decision


def _confirm(decision: str, flt: review.ReviewFilter, n: int) -> None:
    st.session_state.pop(_key("bulk_ask"), None)
    st.session_state[_key("bulk_run")] = (decision, flt, n)


def _run_bulk(decision: str, flt: review.ReviewFilter, n: int) -> None:
    note = st.session_state.get(_key("bulk_note")) or None
    bar = st.progress(0.0, text=f"{_VERB[decision][:-1]}ing {counted(n, 'conversation')}…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,}")

    result = review.bulk_decide(get_engine(), flt, decision, note, progress=progress)
    resumed = " (an interrupted run, resumed)" if result.resumed else ""
    success(f"{decision.capitalize()} {counted(result.decided, 'conversation')}{resumed}.")
    st.rerun()
