"""The Generate page's pieces: the form, the live stream, drafts to resume, the result's fate."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import conversations as convs
from core import drafts
from core.auth import current_actor
from core.config import get_settings
from core.errors import ValidationError
from core.generation import GenerationParams, get_template, template_names
from core.llm.pricing import model_choices
from core.store import get_engine
from core.ui.boundaries import fragment, remember_error, report_error, section, section_key
from core.ui.generation_job import GenerationJob, attempt_failures, job_for, running_job_of
from core.ui.safe import literal
from core.ui.table_state import TableState
from core.ui.toasts import error_kind, notify, success
from core.ui.user import session_id
from core.ui.widgets import ago
from core.wording import counted

__all__ = ["form", "offer_drafts", "result", "stream"]

_K = "generate"
_JOB = section_key(_K, "job")
_FILLED = section_key(_K, "filled")  # the job whose parameters the form was set to
_POLL_S = 0.2  # how often the live view polls the job while it writes


def _key(name: str) -> str:
    return section_key(_K, name)


def current_job() -> GenerationJob | None:
    """This session's generation; a new session (a reloaded tab) takes over its user's running one."""
    job = st.session_state.get(_JOB)
    if job is None:
        job = running_job_of(current_actor().user_id)
        if job is not None:
            st.session_state[_JOB] = job
    return job


def start_job(draft: drafts.DraftSession) -> None:
    """Run `draft` on its own thread (or join the job already writing it); the Generate page shows it."""
    st.session_state[_JOB] = job_for(draft)


def offer_drafts() -> None:
    """Unfinished drafts of this user, a page at a time: resume (continue from the saved text) or discard."""
    job = current_job()
    # shown (live or with its result) below, unless it was stopped: then it is one of these
    mine = job.draft.id if job is not None and not job.cancelled else None
    state = TableState(_key("drafts"), mine)
    size = get_settings().ui_cards_page_size
    page = state.load(lambda n: drafts.unfinished_drafts_page(get_engine(), page=n, page_size=size, exclude=mine))
    if not page.total:
        return
    st.warning(f"You have {counted(page.total, 'unfinished draft')}. Resume one to continue where it stopped.",
               icon=":material/edit_note:")
    for d in page.rows:
        p = d["params"] or {}
        c1, c2, c3 = st.columns([6, 1, 1])
        c1.markdown(f"**{literal(p.get('topic', ''))}** · {literal(p.get('persona', ''))} · "
                    f"{literal(p.get('emotion', ''))} · {d['progress']:.0%} written ({d['chars'] or 0:,} characters)"
                    f" · saved {ago(d['updated_at'])}"
                    + (f"  \n:red[Stopped: {literal(d['error_message'])}]" if d.get("error_message") else ""))
        if c2.button("Resume", key=_key(f"resume_{d['id']}"), icon=":material/play_arrow:"):
            start_job(drafts.DraftSession.load(get_engine(), d["id"]))
            st.rerun()
        if c3.button("Discard", key=_key(f"discard_{d['id']}"), icon=":material/delete:"):
            drafts.discard_draft(get_engine(), d["id"])
            st.rerun()
    state.footer(page, "draft", prefix=_key("drafts_"))


def _show_job_params(job: GenerationJob | None) -> None:
    """The form shows the job's parameters (a resumed draft's, say): set once per job, before its widgets exist."""
    if job is None or st.session_state.get(_FILLED) == job.draft.id:
        return
    st.session_state[_FILLED] = job.draft.id
    p = job.draft.params
    if p.template not in template_names():
        return
    st.session_state[_key("template")] = p.template
    for name in ("persona", "emotion", "topic"):
        st.session_state[_key(f"{name}_{p.template}")] = getattr(p, name)
    st.session_state[_key("turns")] = int(p.turns)
    if p.model in model_choices():
        st.session_state[_key("model")] = p.model


def _suggested(col: Any, label: str, name: str, template: str, suggestions: tuple[str, ...], busy: bool) -> str:
    """One of the template's suggestions, or the person's own words (typed into the same box)."""
    key = _key(f"{name}_{template}")
    current = st.session_state.get(key)
    options = list(suggestions) + ([current] if current and current not in suggestions else [])
    value = col.selectbox(label, options, key=key, accept_new_options=True, disabled=busy,
                          help="Pick a suggestion of this template or type your own.")
    return str(value or "")


def _scenario(tmpl: Any, busy: bool, hints: dict[str, Any]) -> tuple[dict[str, str] | None, str | None]:
    """The template's custom variables (a suggestion or one's own words) and an edge case, if it has them."""
    custom = tmpl.content.custom_variables
    variables: dict[str, str] = {}
    if custom:
        cols = st.columns(min(len(custom), 3))
        for i, name in enumerate(custom):
            col = cols[i % len(cols)]
            variables[name] = _suggested(col, name.replace("_", " ").capitalize(), name, tmpl.name,
                                         tmpl.content.values(name), busy)
            hints[name] = col.empty()
    edge_case = None
    if tmpl.content.edge_cases:
        names = ["(none)", *(e.name for e in tmpl.content.edge_cases)]
        chosen = st.selectbox("Edge case", names, key=_key(f"edge_{tmpl.name}"), disabled=busy)
        edge_case = None if chosen == "(none)" else chosen
        hints["edge_case"] = st.empty()
    return variables or None, edge_case


def form() -> None:
    """Template, persona, emotion, topic, turns and model; each refusal is shown under its field."""
    job = current_job()
    busy = job is not None and not job.done
    _show_job_params(job)
    hints: dict[str, Any] = {}
    names = template_names()
    template = st.selectbox("Template", names, key=_key("template"), format_func=lambda n: get_template(n).title,
                            disabled=busy)
    tmpl = get_template(template)
    st.caption(literal(tmpl.description))
    hints["template"] = st.empty()
    c1, c2, c3 = st.columns(3)
    persona = _suggested(c1, "Persona", "persona", template, tmpl.personas, busy)
    hints["persona"] = c1.empty()
    emotion = _suggested(c2, "Emotion", "emotion", template, tmpl.emotions, busy)
    hints["emotion"] = c2.empty()
    topic = _suggested(c3, "Topic", "topic", template, tmpl.topics, busy)
    hints["topic"] = c3.empty()
    variables, edge_case = _scenario(tmpl, busy, hints)
    c4, c5 = st.columns(2)
    turns = c4.number_input("Turns (messages, even)", value=get_settings().generation_default_turns, step=2,
                            key=_key("turns"), disabled=busy)
    hints["turns"] = c4.empty()
    models = model_choices()
    default = get_settings().default_model
    model = c5.selectbox("Model", models, index=models.index(default) if default in models else 0,
                         key=_key("model"), disabled=busy)
    hints["model"] = c5.empty()
    if not st.button("Generate", type="primary", key=_key("go"), icon=":material/auto_awesome:", disabled=busy):
        return
    params = GenerationParams(template=template, persona=persona, emotion=emotion, topic=topic, turns=int(turns),
                              model=model, template_version=tmpl.version, variables=variables, edge_case=edge_case)
    draft = None
    try:
        draft = drafts.start_draft(get_engine(), params, session_id=session_id())
        start_job(draft)  # refused while another generation of this person runs (another tab)
    except ValidationError as exc:
        if draft is not None:
            draft.drop_if_empty()
        hints.get(exc.field or "", hints["template"]).error(literal(exc.user_message), icon=":material/error:")
        return
    st.session_state[_FILLED] = draft.id  # the form already shows these parameters
    st.rerun()  # the form again, disabled while the job runs (the live view reruns alone)


def _render_text(text: str) -> None:
    blocks = [b for b in drafts.split_turns(text + "\nUser:")] if text else []
    if not blocks:
        st.caption("Waiting for the first words…")
    for b in blocks:
        with st.chat_message("user" if b["role"] == "user" else "assistant"):
            st.markdown(literal(b["content"]))


def stream() -> None:
    """Show the conversation as it is written, the autosave age and each failed attempt, until done."""
    job = current_job()
    if job is None or job.done:
        return
    _live()


@fragment(run_every=_POLL_S)
def _live() -> None:
    """One poll of the running job; this part of the page alone reruns until the job is done."""
    job = current_job()
    if job is None:
        return
    job.watched()
    if job.done:
        st.rerun()  # the whole page: the result replaces the live view and the form is enabled again
    with section("live"):  # a fragment rerun runs outside the page's sections: it keeps its own
        failures = attempt_failures(job.draft.id)
        st.caption(f":material/save: Draft saved {ago(job.draft.saved_at)} · {len(job.text):,} characters · "
                   f"{job.draft.progress:.0%} of turns finished")
        if failures:
            last = failures[-1]
            st.warning(f"Attempt {len(failures)} failed: {literal(last.get('user_message'))} "
                       f"({literal(last.get('error_code'))})", icon=":material/hourglass_top:")
            if len(failures) > job.toasted_failures:
                st.toast(f"{literal(last.get('user_message'))} (attempt {len(failures)})",
                         icon=":material/hourglass_top:")
                job.toasted_failures = len(failures)
        _render_text(job.text)
        if st.button("Stop", key=_key("stop"), icon=":material/stop_circle:",
                     help="Stop writing; the text so far stays as a draft to resume."):
            job.stop()
            job.join(get_settings().ui_generation_stop_wait_s)
            st.rerun()  # the whole page: the stopped draft joins the list to resume


def result() -> None:
    """A finished (or failed) generation: keep it, regenerate it, or discard it."""
    job = current_job()
    if job is None or not job.done:
        return
    if job.error is not None:
        err_id = None
        for row in attempt_failures(job.draft.id)[-1:]:
            err_id = row.get("error_id")
        if not job.reported:  # once per job: the toast and this session's error panel
            job.reported = True
            failures = attempt_failures(job.draft.id)
            if not failures or job.toasted_failures < len(failures):  # the live view had not toasted it
                notify(job.error, err_id)
            remember_error(job.error, err_id, "ui.generate.stream")
        kind = error_kind(job.error)
        st.error(literal(job.error.user_message) + (f" (error id {literal(err_id)})" if err_id else ""),
                 icon=":material/error:")
        dropped = job.draft.status == "discarded"
        st.caption(("Nothing was written yet, so no draft is kept." if dropped else
                    f"The text written so far is kept in the draft ({len(job.draft.partial_text):,} characters).")
                   + (" Fix the setting, then try again." if kind == "actionable" else ""))
        if kind == "actionable" and str(job.error.action) == "fix_settings":
            st.page_link("app_pages/settings.py", label="Open Settings", icon=":material/settings:")
        if dropped:
            if st.button("Try again", key=_key("retry_failed"), icon=":material/refresh:"):
                start_job(drafts.start_draft(get_engine(), job.draft.params, session_id=session_id()))
                st.rerun()
            return
        c1, c2 = st.columns(2)
        if c1.button("Resume from the saved text", key=_key("resume_failed"), icon=":material/play_arrow:"):
            start_job(drafts.DraftSession.load(get_engine(), job.draft.id))
            st.rerun()
        if c2.button("Discard the draft", key=_key("discard_failed"), icon=":material/delete:"):
            drafts.discard_draft(get_engine(), job.draft.id)
            st.session_state.pop(_JOB, None)
            st.rerun()
        return
    if job.cancelled or job.result is None:
        st.session_state.pop(_JOB, None)
        if job.cancelled:
            st.info("Stopped. " + ("Nothing was written yet, so no draft is kept." if job.draft.status == "discarded"
                                   else f"The text so far ({len(job.draft.partial_text):,} characters) is kept as "
                                        "a draft: Resume it above."), icon=":material/stop_circle:")
        return
    conv = job.result.conversation
    st.success(f"Saved to Conversations: {len(conv.turns)} turns, {job.result.usage.input_tokens:,} + "
               f"{job.result.usage.output_tokens:,} tokens, ${job.result.cost_usd:.4f}.", icon=":material/check_circle:")
    for t in conv.turns:
        with st.chat_message("user" if t.role == "user" else "assistant"):
            st.markdown(literal(t.content))
    c1, c2, c3 = st.columns(3)
    if c1.button("Keep and start another", key=_key("keep"), icon=":material/done:"):
        st.session_state.pop(_JOB, None)
        st.rerun()
    if c2.button("Regenerate", key=_key("regenerate"), icon=":material/refresh:"):
        _discard_result(job)
        start_job(drafts.start_draft(get_engine(), job.draft.params, session_id=session_id()))
        st.rerun()
    if c3.button("Discard", key=_key("discard"), icon=":material/delete:"):
        _discard_result(job)
        st.session_state.pop(_JOB, None)
        success("Discarded.")
        st.rerun()


def _discard_result(job: GenerationJob) -> None:
    """Remove the conversation this generation saved (only that one, matched by its draft)."""
    cid = job.draft.conversation_id
    if not cid:
        return
    try:
        convs.delete_draft_conversation(get_engine(), cid, job.draft.id)
    except Exception as exc:  # noqa: BLE001 - classified, recorded and shown; the page carries on
        err, error_id = report_error(exc, component="ui.generate.discard")
        notify(err, error_id)
