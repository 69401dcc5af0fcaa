"""The Batches page's pieces: create (grid or CSV) with an estimate, the live list, detail, actions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.batches import csv_import
from core.batches import service as batches
from core.config import get_settings
from core.conversations import ConversationFilter
from core.errors import AppError, ErrorCode, ValidationError
from core.generation import get_template, template_names
from core.llm.pricing import model_choices
from core.store import get_engine, utcnow
from core.ui import coverage_view, health_view
from core.ui.boundaries import callback, report_error, section_key
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.timefmt import ago, duration, exact
from core.ui.toasts import notify_exception, success
from core.ui.widgets import status_badge
from core.wording import counted

__all__ = ["actions", "create_from_csv", "create_from_grid", "detail", "live_list", "run_action", "selected_batch"]

_K = "batches"
_SELECTED = section_key(_K, "selected")
_FAILED_PAGE = 50
# what each audited action on a batch is called in its history
_DONE = {"batch.create": "created", "batch.resume": "resumed", "batch.retry_failed": "retried failed items",
         "batch.pause": "paused", "batch.cancel": "cancelled", "batch.budget": "changed the budget"}


def _key(name: str) -> str:
    return section_key(_K, name)


def selected_batch() -> str | None:
    """The batch shown in detail: picked in the list, or given as ?batch=<id> by a link."""
    return st.session_state.get(_SELECTED) or st.query_params.get("batch")


def _select(batch_id: str) -> None:
    st.session_state[_SELECTED] = batch_id


def _refused(hints: dict[str, Any], exc: ValidationError) -> None:
    """Show a refusal under the field it names, or under the form."""
    hints.get(exc.field or "", hints["_form"]).error(literal(exc.user_message), icon=":material/error:")


def _estimate_line(hints: dict[str, Any], template: str, count: int, model: str, turns: int) -> dict[str, Any] | None:
    """Show the estimate and return it; None, with the refusal shown, when the input is refused."""
    try:
        est = batches.estimate(template, count, model, turns=turns, engine=get_engine())
    except ValidationError as exc:
        _refused(hints, exc)
        return None
    basis = (f"tokens as measured on the last {counted(est['measured_from'], 'conversation')} of this template"
             if est["measured_from"] else "tokens estimated from the prompt (no conversations of this template yet)")
    # cost and time depend on the mode: they are given per mode under "How to send", not here
    st.info(f"**Estimate:** {est['calls']:,} calls · {est['tokens']:,} tokens "
            f"({est['input_tokens']:,} in / {est['output_tokens']:,} out); the cost and time of each way to send "
            f"are below  \n{basis}", icon=":material/calculate:")
    return est


_MODES = {"online": "Online (one call per conversation)", "message_batches": "Message Batches (half price)"}


def _mode_and_budget(est: dict[str, Any], key: str, hints: dict[str, Any]) -> tuple[str, float | None, dict[str, Any]]:
    """The mode radio with both modes' cost and time side by side, and the budget; the estimate in the chosen mode."""
    seconds = est["seconds"]
    online_time = f"about {seconds:,} s" if seconds < 120 else f"about {seconds / 60:,.1f} min"
    cols = st.columns(2)
    cols[0].metric(_MODES["online"], f"${est['cost_usd']:,.2f}", online_time, delta_color="off", delta_arrow="off",
                   help="At the account's rate limit, which the line below names.")
    cols[0].caption(f"Online time: {est['binding']['text']}")
    cols[1].metric(_MODES["message_batches"], f"${est['batch_cost_usd']:,.2f}", "results within 24 h",
                   delta_color="off", delta_arrow="off", help="Remote Message Batches: every token at 50 % of the online "
                   "price, not bound by the per-minute rate limits; most batches end well within the 24 hours.")
    mode = st.radio("How to send", list(_MODES), format_func=_MODES.__getitem__, horizontal=True,
                    key=_key(f"{key}_mode"))
    budget = st.number_input("Budget in $ (0: none)", min_value=0.0, max_value=get_settings().batch_budget_max_usd,
                             value=0.0, step=1.0, key=_key(f"{key}_budget"),
                             help="The worker pauses the batch before committed plus in-flight cost would pass it.")
    hints["budget_usd"], hints["mode"] = st.empty(), st.empty()
    chosen = est if mode == "online" else {**est, "cost_usd": est["batch_cost_usd"]}
    return str(mode), (float(budget) or None), chosen


def _judge_box(key: str) -> bool:
    """Whether the optional LLM judge scores this batch's conversations (its template may ask for it anyway)."""
    return bool(st.checkbox("Score each conversation with the LLM judge", key=_key(f"{key}_judge"),
                            help="One more model call per conversation (its cost is shown apart as judge cost): "
                            "a 1-5 score with a reason for persona, emotion, topic, realism, assistant quality, "
                            "coherence and safety, shown to the reviewer. Off by default."))


def _launch(hints: dict[str, Any], **kwargs: Any) -> None:
    try:
        batch_id = batches.create_batch(get_engine(), **kwargs)
    except ValidationError as exc:
        _refused(hints, exc)
        return
    except AppError as exc:
        notify_exception(exc, component="ui.batches.create")
        return
    _select(batch_id)
    success(f"Batch launched: {kwargs.get('count') or 'all'} items. Progress is below.")


def _launch_button(label: str, key: str, est: dict[str, Any], hints: dict[str, Any], **kwargs: Any) -> None:
    """Launch on click; a batch estimated above settings.batch_confirm_above_usd asks first, showing its estimate.

    The question is tied to the estimate it was asked for: changing the form drops it.
    """
    limit = get_settings().batch_confirm_above_usd
    asked = _key(f"{key}_confirm")
    this = (est["calls"], est["tokens"], est["cost_usd"], est["model"])
    if st.session_state.get(asked) not in (None, this):
        st.session_state.pop(asked)
    if st.button(label, type="primary", key=_key(key), icon=":material/rocket_launch:",
                 disabled=asked in st.session_state):
        if est["cost_usd"] <= limit:
            _launch(hints, **kwargs)
            return
        st.session_state[asked] = this
    if asked not in st.session_state:
        return
    st.warning(f"This batch is estimated at **about ${est['cost_usd']:,.2f}** ({est['calls']:,} calls, "
               f"{est['tokens']:,} tokens), more than the ${limit:,.2f} above which a launch asks first. "
               "Launch it?", icon=":material/paid:")
    c1, c2 = st.columns(2)
    if c1.button(f"Launch (about ${est['cost_usd']:,.2f})", type="primary", key=_key(f"{key}_yes"),
                 icon=":material/rocket_launch:"):
        st.session_state.pop(asked)
        _launch(hints, **kwargs)
        st.rerun()
    if c2.button("Don't launch", key=_key(f"{key}_no"), icon=":material/close:"):
        st.session_state.pop(asked)
        st.rerun()


def _name(template: str, count: int, hints: dict[str, Any]) -> str | None:
    """The batch's name; left empty, the default (template, count, time) shown as the placeholder."""
    title = get_template(template).title
    name = st.text_input("Name (optional)", key=_key(f"name_{template}"),
                         placeholder=batches.default_name(title, count, utcnow()),
                         help="A name to tell this batch apart on the Batches and Conversations pages.")
    hints["name"] = st.empty()
    return name.strip() or None


def _common(template: str, cols: Any, hints: dict[str, Any]) -> tuple[int, str, int]:
    turns = cols[0].number_input("Turns per conversation", value=get_settings().generation_default_turns, step=2, key=_key(f"turns_{template}"))
    hints["turns"] = cols[0].empty()
    models = model_choices()
    model = cols[1].selectbox("Model", models, index=models.index(get_settings().default_model)
                              if get_settings().default_model in models else 0, key=_key(f"model_{template}"))
    hints["model"] = cols[1].empty()
    concurrency = cols[2].number_input("Concurrency", value=get_settings().worker_concurrency, step=1,
                                       key=_key(f"conc_{template}"))
    hints["concurrency"] = cols[2].empty()
    return int(turns), model, int(concurrency)


def create_from_grid() -> None:
    hints: dict[str, Any] = {}
    names = template_names()
    template = st.selectbox("Template", names, key=_key("template"), format_func=lambda n: get_template(n).title)
    tmpl = get_template(template)
    c1, c2, c3 = st.columns(3)
    personas = c1.multiselect("Personas", tmpl.personas, default=list(tmpl.personas[:2]),
                              key=_key(f"personas_{template}"), accept_new_options=True)
    hints["persona"] = c1.empty()
    emotions = c2.multiselect("Emotions", tmpl.emotions, default=list(tmpl.emotions[:2]),
                              key=_key(f"emotions_{template}"), accept_new_options=True)
    hints["emotion"] = c2.empty()
    topics = c3.multiselect("Topics", tmpl.topics, default=list(tmpl.topics[:2]), key=_key(f"topics_{template}"),
                            accept_new_options=True)
    hints["topic"] = c3.empty()
    scenario = coverage_view.grid_options(tmpl, _K, hints)
    c4, c5, c6, c7 = st.columns(4)
    count = c4.number_input("Conversations", value=20, step=1, key=_key("count"))
    hints["count"] = c4.empty()
    turns, model, concurrency = _common(template, [c5, c6, c7], hints)
    hints["_form"] = hints["status"] = st.empty()
    grid = coverage_view.grid_size([personas, emotions, topics], scenario)
    st.caption(coverage_view.grid_caption(grid, int(count), scenario))
    est = _estimate_line(hints, template, int(count), model, turns)
    if est is None:
        return
    mode, budget, est = _mode_and_budget(est, "grid", hints)
    judge = _judge_box("grid")
    name = _name(template, int(count), hints)
    _launch_button("Launch batch", "launch_grid", est, hints, template=template, count=int(count), personas=personas,
                   emotions=emotions, topics=topics, turns=turns, model=model, concurrency=concurrency, name=name,
                   mode=mode, budget_usd=budget, judge=judge, **scenario)


def create_from_csv() -> None:
    hints: dict[str, Any] = {}
    template = st.selectbox("Template", template_names(), key=_key("csv_template"),
                            format_func=lambda n: get_template(n).title)
    upload = st.file_uploader("CSV with columns persona, emotion, topic (turns optional)", type=["csv"],
                              key=_key("csv_file"))
    hints["csv"] = st.empty()
    c1, c2, c3 = st.columns(3)
    turns, model, concurrency = _common(f"csv_{template}", [c1, c2, c3], hints)
    hints["_form"] = hints["count"] = hints["status"] = st.empty()
    if upload is None:
        st.caption("Upload a file to see a preview and an estimate.")
        return
    try:
        rows = csv_import.parse_csv(upload, variables=get_template(template).content.custom_variables)
    except ValidationError as exc:
        hints["csv"].error(literal(exc.user_message), icon=":material/error:")
        return
    st.caption(f"{len(rows):,} rows · preview of the first 20")
    st.dataframe(pd.DataFrame(rows[:20]), hide_index=True)
    est = _estimate_line(hints, template, len(rows), model, turns)
    if est is None:
        return
    mode, budget, est = _mode_and_budget(est, "csv", hints)
    judge = _judge_box("csv")
    name = _name(template, len(rows), hints)
    _launch_button("Launch batch from CSV", "launch_csv", est, hints, template=template, rows=rows, turns=turns,
                   model=model, concurrency=concurrency, name=name, mode=mode, budget_usd=budget, judge=judge)


def _eta(seconds: int | None) -> str:
    if seconds is None:
        return "ETA —"
    if seconds < 90:
        return f"ETA {seconds} s"
    return f"ETA {seconds / 60:.0f} min"


@callback
def run_action(label: str, fn: Any, batch_id: str, **kwargs: Any) -> None:
    """A button's callback: run a batch action as this user; say it is done, or show why not."""
    try:
        result = fn(get_engine(), batch_id, **kwargs)
    except AppError as exc:
        notify_exception(exc, component=f"ui.batches.{label.lower().replace(' ', '_')}")
        return
    success(f"{label}: done ({counted(result, 'item')})." if isinstance(result, int) else f"{label}: done.")


def actions(b: dict[str, Any], where: str) -> None:
    """One-click Resume, Retry failed, Pause and Cancel — those the batch's state allows, if this user may act on it."""
    state, bid = b["state"], b["id"]
    resumable = b["may_act"] and (state in ("paused", "failed") or b.get("interrupted"))
    buttons: list[tuple[str, str, Any, dict[str, Any]]] = []
    if resumable:
        # a breaker pause ends by itself: resuming only tries now instead of at the next try
        label = "Resume now" if b.get("pause_kind") == "breaker" else "Resume"
        buttons.append((label, ":material/play_arrow:", batches.resume_batch, {}))
    if b["may_act"] and b.get("failed") and state not in ("cancelled", "completed", "running", "queued"):
        buttons.append(("Retry failed", ":material/replay:", batches.resume_batch, {"failed_only": True}))
    if b["may_act"] and state in ("queued", "running") and not b.get("interrupted"):
        buttons.append(("Pause", ":material/pause:", batches.pause_batch, {}))
    if b["may_act"] and state in ("queued", "running", "paused", "failed"):
        buttons.append(("Cancel", ":material/cancel:", batches.cancel_batch, {}))
    cols = st.columns(max(len(buttons), 1) + 1)
    for col, (label, icon, fn, kw) in zip(cols, buttons, strict=False):
        col.button(label, key=_key(f"{where}_{label}_{bid}"), icon=icon, on_click=run_action, args=(label, fn, bid),
                   kwargs=kw)
    cols[-1].button("Details", key=_key(f"{where}_details_{bid}"), icon=":material/info:", on_click=_select,
                    args=(bid,))


def batch_card(b: dict[str, Any], where: str = "list") -> None:
    with st.container(border=True):
        top = st.columns([5, 3])
        state = b["shown_state"]
        top[0].markdown(f"**{literal(b['name'])}** {status_badge(state)}")
        top[0].caption(f"{literal(b['id'])} · {literal(b['model'])} · by {literal(b['owner'] or 'nobody')} · "
                       f"created {ago(b['created_at'])}",
                       help=f"Created {exact(b['created_at'])}"
                       + (f", finished {exact(b['finished_at'])}" if b.get("finished_at") else ""))
        top[1].caption(f"{_pace(b)}  \n{b['tokens']:,} tokens · ${b['cost_usd']:,.4f}")
        done = b["done"] + b["failed"] + b["skipped"]
        st.progress(min(b["progress"], 1.0),
                    text=f"{done} / {b['total']} ({b['progress']:.0%}) — {b['done']} done, {b['failed']} failed, "
                    f"{b['running']} running, {b['pending']} pending")
        if b.get("shown_reason") and state not in ("running", "completed"):
            st.caption(f"Why: {literal(b['shown_reason'])}")
        actions(b, where)
        links = st.columns(2)
        links[0].page_link("app_pages/conversations.py", label="Its conversations", icon=":material/forum:",
                           query_params={"batch": b["id"]})
        links[1].page_link("app_pages/errors.py", label="Its errors", icon=":material/bug_report:",
                           query_params={"batch": b["id"]})


def _pace(b: dict[str, Any]) -> str:
    """Running: the current rate and ETA; finished: the final rate over its duration; else how long it has run."""
    took = duration(b.get("duration_s"))
    if b.get("final_throughput_per_min") is not None:
        return f"{b['final_throughput_per_min']:.1f} conv/min overall · took {took}"
    if b["state"] == "running" and not b.get("interrupted"):
        return f"{b['throughput_per_min']:.1f} conv/min · {_eta(b['eta_s'])} · running {took}"
    return "not started yet" if b.get("duration_s") is None else f"ran {took} so far"


def live_list() -> list[str]:
    """The batches, newest first, a page at a time with live progress (the page refreshes this part); their ids."""
    state = TableState(_key("list"), None)
    size = get_settings().ui_cards_page_size
    page = state.load(lambda n: batches.batches_page(get_engine(), page=n, page_size=size))
    if not page.total:
        st.caption("No batches yet. Create one above.")
    for b in page.rows:
        batch_card(b)
    state.footer(page, "batch", prefix=_key("list_"))
    return [b["id"] for b in page.rows]


def detail(batch_id: str, listed: list[str]) -> None:
    """Failed items with their errors, resumes, and a link to the batch's errors (its card if not listed)."""
    try:
        b = batches.get_batch_status(get_engine(), batch_id)
    except ValidationError as exc:
        if exc.code is not ErrorCode.UNKNOWN_BATCH:
            raise
        _report_unknown_once(batch_id, exc)
        st.warning(literal(exc.user_message), icon=":material/search_off:")
        return
    st.subheader(f"Details: {literal(b['name'])}")
    st.caption(f"{literal(batch_id)} · template {literal(b['template'])} · concurrency {b['concurrency']} · "
               f"created {exact(b['created_at'])} ({ago(b['created_at'])})"
               + (f" · finished {exact(b['finished_at'])}, took {duration(b['duration_s'])}"
                  if b.get("finished_at") else ""))
    if batch_id not in listed:
        batch_card(b, "detail")
    if b.get("rate_limit_wait_s") is not None:
        st.warning(f"waiting for rate limit: {int(b['rate_limit_wait_s'])} s", icon=":material/hourglass_top:")
    binding = batches.batch_binding(b) if b["mode"] != "message_batches" else None  # not bound by the rate limits
    if binding is not None:
        st.caption(f"Pace: {binding['text']} (Settings → Rate limits).")
    st.page_link("app_pages/errors.py", label="Errors of this batch", icon=":material/bug_report:",
                 query_params={"batch": batch_id})
    _mode_and_remote(b)
    _failed_items(batch_id)
    health_view.health_panel(ConversationFilter(batch_id=batch_id), "this batch")
    coverage_view.coverage_grid(batch_id)
    _resumes(batch_id)
    _history(batch_id)


def _mode_and_remote(b: dict[str, Any]) -> None:
    """The batch's mode and price, its budget (with a way to raise it), and its remote batches with their counts."""
    price = "at the Message Batches price (50 % of online)" if b["mode"] == "message_batches" else "at the online price"
    budget = "no budget" if b["budget_usd"] is None else f"budget ${b['budget_usd']:,.2f}"
    st.caption(f"Mode: {_MODES.get(b['mode'], literal(b['mode']))} · cost ${b['cost_usd']:,.4f} {price} · {budget}")
    if b["may_act"] and b["state"] not in ("completed", "cancelled"):
        cols = st.columns([2, 1])
        most = get_settings().batch_budget_max_usd
        # twice what it may spend or has spent: a cap under what is spent already would pause it at once
        offered = min(max(float(b["budget_usd"] or 0.0), float(b["cost_usd"]), 0.5) * 2, most)
        new = cols[0].number_input("New budget in $", min_value=0.01, max_value=most, value=offered, step=1.0,
                                   key=_key(f"budget_{b['id']}"))
        cols[1].button("Set budget", key=_key(f"set_budget_{b['id']}"), icon=":material/paid:", on_click=_set_budget,
                       args=(b["id"], _key(f"budget_{b['id']}")), disabled=new is None)
    kinds = batches.cost_by_kind(b)
    st.dataframe(pd.DataFrame([{"Kind": k["kind"], "Tokens": k["tokens"], "Cost ($)": round(k["cost_usd"], 6)}
                               for k in kinds]), hide_index=True,
                 column_config={"Tokens": st.column_config.NumberColumn("Tokens", format="localized")})
    subs = b.get("submissions") or []
    if not subs:
        return
    st.markdown(f"**Remote batches ({len(subs):,})**")
    st.dataframe(pd.DataFrame([{"remote id": s["remote_id"] or "(not stored yet)", "state": s["state"],
                                "requests": s["request_count"], **s["counts"], "results saved": s["results_done"],
                                "submitted": s["submitted_at"],
                                "note": s["last_error"] or ""} for s in subs]), hide_index=True,
                 column_config={"submitted": st.column_config.DatetimeColumn(
                     "submitted", format="distance", help="How long ago it was sent")})


@callback
def _set_budget(batch_id: str, key: str) -> None:
    """The budget typed beside the button (read at the click, not when the button was drawn)."""
    run_action("Set budget", batches.set_budget, batch_id, budget_usd=float(st.session_state[key]))


def _resumes(batch_id: str) -> None:
    """The batch's resumes, newest first, a page at a time."""
    state = TableState(_key("resumes"), batch_id)
    size = get_settings().ui_table_page_size
    page = state.load(lambda n: batches.resume_history_page(get_engine(), batch_id, page=n, page_size=size))
    if not page.total:
        return
    st.markdown(f"**Resumes ({page.total:,})**")
    st.dataframe(pd.DataFrame([{"resumed": exact(h["resumed_at"]), "by": h["resumed_by_name"] or "system",
                                "failed only": h["failed_only"], "requeued": h["requeued_count"],
                                "was": h["previous_status"]} for h in page.rows]), hide_index=True)
    state.footer(page, "resume", prefix=_key("resumes_"))


def _history(batch_id: str) -> None:
    """Who did what to the batch, from the audit trail."""
    events = batches.batch_history(get_engine(), batch_id)
    if not events:
        return
    st.markdown("**History**")
    st.dataframe(pd.DataFrame([{"when": exact(e["at"]), "who": e["by"], "what": _DONE.get(e["action"], e["action"]),
                                "detail": ", ".join(f"{k} {v}" for k, v in e["detail"].items())}
                               for e in events]), hide_index=True)


def _failed_items(batch_id: str) -> None:
    """The batch's failed items, paged: the heading counts all of them, not the rows on screen."""
    state = TableState(_key("failed"), batch_id)
    page = state.load(lambda n: batches.failed_items_page(get_engine(), batch_id, page=n, page_size=_FAILED_PAGE))
    if not page.total:
        st.caption("No failed items.")
        return
    st.markdown(f"**Failed items ({page.total:,})**")
    st.dataframe(pd.DataFrame([{"item": f["item_index"], "attempts": f["attempts"], "code": f["last_error_code"],
                                "error": f["last_error"], "persona": (f["params"] or {}).get("persona"),
                                "topic": (f["params"] or {}).get("topic")} for f in page.rows]), hide_index=True)
    state.footer(page, "failed item", prefix=_key("failed_"))


def _report_unknown_once(batch_id: str, exc: ValidationError) -> None:
    """An unknown ?batch= id is logged once a session, not on every refresh of the live part."""
    reported = st.session_state.setdefault(_key("unknown_reported"), set())
    if batch_id not in reported:
        reported.add(batch_id)
        report_error(exc, component="ui.batches.detail")
