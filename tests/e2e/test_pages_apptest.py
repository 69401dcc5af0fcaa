"""Every page renders on seeded data without an exception, with its key elements; boundaries hold."""

from __future__ import annotations

from e2e_data import listed, open_export, shown
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.auth import current_actor
from core.errorlog import flush
from core.store.schema import error_logs

BOUNDARY_SCRIPT = """
import streamlit as st
from core.ui.boundaries import section, section_key, set_current_page
from core.ui.user import session_actor

session_actor()  # as Home.py does: the run acts as the session's person
set_current_page("demo")
st.title("Demo page")
with section("broken"):
    key = section_key("broken", "runs")
    st.session_state[key] = st.session_state.get(key, 0) + 1
    st.write(f"broken section ran {st.session_state[key]} time(s)")
    if st.session_state.get("fail", True):
        raise RuntimeError("boom in the broken section")
with section("fine"):
    st.write("the fine section still renders")
"""


def _texts(at: AppTest) -> str:
    return "\n".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning,
                                             *at.success, *at.title, *at.subheader])


def test_home_shows_health_at_a_glance(open_page):
    """Home shows the provider said plainly, errors of the last 24 h by severity, batches and drafts."""
    at = open_page("home")
    assert not at.exception
    text = _texts(at)
    assert "Offline sandbox — text is generated locally, not by Claude" in text
    assert {m.label for m in at.metric} >= {"critical", "error", "warn"}
    assert "Active batches" in text and "Unfinished drafts" in text
    assert not at.error, [e.value for e in at.error]


def test_errors_page_shows_stats_table_and_export(open_page):
    """The Errors page has its five stats cards, the paged table, paging buttons and the CSV download."""
    at = open_page("errors")
    assert not at.exception
    labels = {m.label for m in at.metric}
    assert labels >= {"Errors", "Critical", "Recoverable", "Recovered automatically", "Open breakers"}
    assert len(at.dataframe) >= 1
    assert {b.label for b in at.button} >= {"Previous", "Next"}
    assert any("matching rows" in c.value for c in at.caption)
    assert not at.error, [e.value for e in at.error]


def test_errors_search_too_long_is_refused_beside_the_field(open_page):
    """An over-long search gets a message under the search box; the page still renders."""
    at = open_page("errors")
    at.text_input(key="errors.search").input("x" * 500).run()
    assert not at.exception
    assert any("limit" in e.value for e in at.error)
    assert {m.label for m in at.metric} >= {"Errors"}


def test_batches_page_lists_the_batch_with_actions(open_page, seeded):
    """The Batches page shows the estimate, the seeded batch's progress and its one-click actions."""
    at = open_page("batches")
    assert not at.exception
    text = _texts(at)
    assert "Estimate:" in text
    # no cost or time in the estimate line: they differ by mode, and each mode's is given beside its name
    [line] = [i.value for i in at.info if "Estimate:" in i.value]
    assert "$" not in line and " min" not in line
    costs = {m.label: m.value for m in at.metric if m.label.startswith(("Online", "Message Batches"))}
    assert len(costs) == 2 and all(v.startswith("$") for v in costs.values())
    assert seeded["batch_id"] in text
    labels = {b.label for b in at.button}
    assert {"Launch batch", "Pause", "Cancel", "Details"} <= labels


def test_batches_launch_creates_a_batch(open_page, engine):
    """Clicking Launch batch creates a queued batch with the chosen count."""
    from core.batches import service

    at = open_page("batches")
    at.number_input(key="batches.count").set_value(7)
    at.button(key="batches.launch_grid").click().run()
    assert not at.exception
    counts = sorted(b["total"] for b in service.list_batches(engine))
    assert counts == [3, 7]


def test_a_batch_estimated_above_the_threshold_asks_first_with_its_estimate(open_page, engine, monkeypatch):
    """Above the confirm threshold, Launch shows the estimate and launches only on "Launch"; "Don't launch" creates nothing."""
    from core.batches import service
    from core.config import reload_settings

    monkeypatch.setenv("STUDIO_BATCH_CONFIRM_ABOVE_USD", "0.001")
    reload_settings()
    at = open_page("batches")
    at.number_input(key="batches.count").set_value(7).run()
    at.button(key="batches.launch_grid").click().run()
    assert not at.exception
    assert len(service.list_batches(engine)) == 1  # only the seeded one: nothing launched yet
    est = service.estimate(service.get_batch_status(engine, service.list_batches(engine)[0]["id"])["template"], 7,
                           engine=engine)
    question = " ".join(w.value for w in at.warning if "estimated at" in w.value)
    assert f"about ${est['cost_usd']:,.2f}" in question and "7 calls" in question, question
    at.button(key="batches.launch_grid_no").click().run()
    assert len(service.list_batches(engine)) == 1
    assert not any("estimated at" in w.value for w in at.warning)
    at.button(key="batches.launch_grid").click().run()
    at.button(key="batches.launch_grid_yes").click().run()
    assert not at.exception
    assert sorted(b["total"] for b in service.list_batches(engine)) == [3, 7]


def test_conversations_page_shows_a_chat(open_page):
    """The Conversations page lists the conversation and shows it as chat messages, with both exports."""
    at = open_page("conversations")
    assert not at.exception
    assert len(listed(at)) == 1
    assert len(at.chat_message) == 2
    assert "Why was I billed twice?" in _texts(at)


def test_downloads_say_their_size_limit_and_name_the_cli_export(open_page):
    """Errors and Conversations say beside their downloads how much they hold and which command exports all."""
    for page, command in (("errors", "python -m core errors export"),
                          ("conversations", "python -m core conversations export")):
        at = open_export(open_page) if page == "conversations" else open_page(page)
        assert not at.exception
        notes = [shown(c.value) for c in at.caption if "A download here holds at most" in shown(c.value)]
        assert len(notes) == 1 and command in notes[0] and "20 MB" in notes[0]


def test_settings_page_refuses_a_bad_value_beside_its_field(open_page):
    """A negative cool-down is named beside its field and not applied."""
    from core.config import get_settings

    at = open_page("settings")
    assert not at.exception
    at.text_input(key="settings.breaker_cooldown_s").input("-1")
    at.button[[b.label for b in at.button].index("Save and apply")].click().run()
    assert [shown(e.value) for e in at.error] == [
        "Pause before trying a failing service again (s) must be a number from 0 to 3,600."]
    assert get_settings().breaker_cooldown_s == 30.0


def test_settings_page_applies_a_valid_value(open_page):
    """A valid change is saved and in force without a restart."""
    from core.config import get_settings

    at = open_page("settings")
    at.text_input(key="settings.retry_max_attempts").input("6")
    at.button[[b.label for b in at.button].index("Save and apply")].click().run()
    assert not at.exception and not at.error
    assert get_settings().retry_max_attempts == 6


def test_settings_page_labels_and_help_come_from_the_settings_model(open_page):
    """Each field shows its declared title, and its help says the bound, the default and the variable."""
    from core.config import Settings

    at = open_page("settings")
    field = at.text_input(key="settings.breaker_cooldown_s")
    assert field.label == Settings.model_fields["breaker_cooldown_s"].title
    assert field.help == "Allowed: a number from 0 to 3,600. Environment variable STUDIO_BREAKER_COOLDOWN_S."


def test_failing_section_shows_fallback_while_the_page_renders(engine, app_env):
    """A section that raises shows a message, its error id and Try again; the next section still renders."""
    me = current_actor(engine)  # the local user (STUDIO_USER), whom the page runs as
    at = AppTest.from_string(BOUNDARY_SCRIPT, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Demo page"
    assert shown(at.error[0].value) == "Something went wrong on this page. The error has been recorded."
    caption = next(shown(c.value) for c in at.caption if c.value.startswith("Error id:"))
    error_id = caption.removeprefix("Error id: ").split(" · ")[0]
    assert any("the fine section still renders" in m.value for m in at.markdown)
    assert "Try again" in [b.label for b in at.button]
    assert not any("Traceback" in c.value for c in at.code)  # no stack trace outside development
    flush()
    with engine.connect() as conn:
        row = conn.execute(select(error_logs).where(error_logs.c.error_id == error_id)).one()
    assert row.component == "ui.demo.broken" and row.user_id == me.user_id and row.session_id  # an id, not a name


def test_try_again_resets_the_section_and_reruns_it(engine, app_env):
    """Try again clears the section's state keys and, once the cause is gone, the section renders."""
    at = AppTest.from_string(BOUNDARY_SCRIPT, default_timeout=30).run()
    at.session_state["fail"] = False
    at.button[[b.label for b in at.button].index("Try again")].click().run()
    assert not at.exception and not at.error
    assert any("broken section ran 1 time(s)" in m.value for m in at.markdown)


def _until_generated(at: AppTest, timeout_s: float = 60.0) -> AppTest:
    """Rerun the page as the live view's timer does in a browser (AppTest runs no timers) until the job ends."""
    import time

    deadline = time.monotonic() + timeout_s
    while not at.session_state["generate.job"].done:
        assert time.monotonic() < deadline, "the generation did not finish"
        time.sleep(0.2)
    return at.run()


def test_generate_page_streams_and_saves_a_conversation(open_page, engine):
    """Generate writes a conversation through the sandbox, shows it as chat and offers keep/regenerate/discard."""
    from core import conversations as convs

    at = open_page("generate")
    assert not at.exception
    at.button(key="generate.go").click().run()
    assert not at.exception and not at.error
    _until_generated(at)
    assert not at.exception and not at.error
    assert any(s.value.startswith("Saved to Conversations") for s in at.success)
    assert len(at.chat_message) >= 2
    assert {"Keep and start another", "Regenerate", "Discard"} <= {b.label for b in at.button}
    rows = convs.list_conversations(engine, convs.ConversationFilter(draft_only=True)).rows
    assert sum(1 for r in rows if r["draft_id"]) == 1  # the seeded conversation has no draft


def test_generate_refuses_odd_turns_beside_the_field(open_page, engine):
    """An odd number of turns is refused under the field and no draft is started."""
    from core.drafts import list_unfinished_drafts

    at = open_page("generate")
    at.number_input(key="generate.turns").set_value(5)
    at.button(key="generate.go").click().run()
    assert any("even" in e.value for e in at.error)
    assert list_unfinished_drafts(engine) == []


def _slow_sandbox(monkeypatch, **env: str) -> None:
    """The in-process sandbox writes slowly enough to see a generation running."""
    from core.config import reload_settings
    from core.llm.client import reset_client

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reload_settings()
    reset_client()


def _wait(predicate, what: str, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_running_generation_can_be_stopped_and_its_text_stays_as_a_draft(open_page, engine, monkeypatch):
    """While it writes, Generate is disabled and Stop is shown; Stop keeps the text as a resumable draft, saves nothing else."""
    from core import conversations as convs
    from core.drafts import list_unfinished_drafts

    _slow_sandbox(monkeypatch, STUDIO_SANDBOX_TOKENS_PER_S="40")
    at = open_page("generate")
    at.button(key="generate.go").click().run()
    assert not at.exception
    job = at.session_state["generate.job"]
    assert at.button(key="generate.go").disabled and not job.done
    assert "Stop" in [b.label for b in at.button]
    _wait(lambda: job.draft.progress > 0, "a finished turn")
    at.button(key="generate.stop").click().run()
    assert not at.exception and job.done and job.cancelled
    assert any(i.value.startswith("Stopped.") for i in at.info)
    (draft,) = list_unfinished_drafts(engine)
    assert draft["progress"] > 0 and draft["chars"] >= len(job.text) > 0
    assert not at.button(key="generate.go").disabled
    assert f"generate.resume_{draft['id']}" in [b.key for b in at.button]
    assert not any(r["draft_id"] for r in convs.list_conversations(engine, convs.ConversationFilter()).rows)


def test_a_generation_stopped_before_its_first_turn_keeps_no_draft(open_page, engine, monkeypatch):
    """Stopped at 0 %, the draft is dropped: nothing to resume is listed."""
    from core.drafts import list_unfinished_drafts

    _slow_sandbox(monkeypatch, STUDIO_SANDBOX_TOKENS_PER_S="40", STUDIO_SANDBOX_LATENCY_MS="1500")
    at = open_page("generate")
    at.button(key="generate.go").click().run()
    at.button(key="generate.stop").click().run()
    assert not at.exception
    assert any("no draft is kept" in i.value for i in at.info), [i.value for i in at.info]
    assert list_unfinished_drafts(engine) == []


def test_resume_shows_the_drafts_template_and_turns_in_the_form(open_page, engine, monkeypatch):
    """Resuming a draft sets the form to its template, persona, emotion, topic and turns."""
    _slow_sandbox(monkeypatch, STUDIO_SANDBOX_TOKENS_PER_S="40")
    draft_id = _draft(engine, template="tutoring", persona="a nervous pilot", emotion="curious", topic="clouds",
                      turns=4)
    at = open_page("generate")
    at.button(key=f"generate.resume_{draft_id}").click().run()
    assert not at.exception
    job = at.session_state["generate.job"]
    try:
        assert at.selectbox(key="generate.template").value == "tutoring"
        assert at.number_input(key="generate.turns").value == 4
        assert at.selectbox(key="generate.persona_tutoring").value == "a nervous pilot"
        assert at.selectbox(key="generate.topic_tutoring").value == "clouds"
        assert at.button(key="generate.go").disabled
    finally:
        job.cancel()
        job.join(10)


def test_generate_offers_the_templates_suggestions_and_takes_own_words(open_page, engine):
    """Persona, emotion and topic are choices from the template's suggestions, and the chosen one is generated."""
    from core.drafts import get_draft
    from core.generation import get_template

    at = open_page("generate")
    tmpl = get_template(at.selectbox(key="generate.template").value)
    persona = at.selectbox(key=f"generate.persona_{tmpl.name}")
    assert list(persona.options) == list(tmpl.personas) and persona.value == tmpl.default_persona
    assert list(at.selectbox(key=f"generate.emotion_{tmpl.name}").options) == list(tmpl.emotions)
    at.selectbox(key=f"generate.topic_{tmpl.name}").set_value(tmpl.topics[2])
    at.button(key="generate.go").click().run()
    assert not at.exception
    job = at.session_state["generate.job"]
    job.cancel()
    job.join(30)
    assert get_draft(engine, job.draft.id)["params"]["topic"] == tmpl.topics[2]


def _draft(engine, *, template: str, persona: str, emotion: str, topic: str, turns: int) -> str:
    """An in-progress draft a quarter written, saved an hour ago; returns its id."""
    import uuid
    from datetime import timedelta

    from core.auth import current_actor
    from core.store.schema import conversation_drafts, utcnow

    old = utcnow() - timedelta(hours=1)
    draft_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(conversation_drafts.insert().values(
            id=draft_id, user_id=current_actor(engine).user_id, template=template,
            params={"template": template, "persona": persona, "emotion": emotion, "topic": topic, "turns": turns},
            partial_text="User: hello\n\nAssistant: hi", turns=[], status="in_progress", progress=0.25,
            created_at=old, updated_at=old, expires_at=old + timedelta(hours=24)))
    return draft_id


def _stall(engine, batch_id: str) -> str:
    """Make the seeded batch failed with one failed item, and leave an orphaned draft; returns the draft id."""
    import uuid
    from datetime import timedelta

    from core.auth import current_actor
    from core.store.schema import batch_items, batch_jobs, conversation_drafts, utcnow

    old = utcnow() - timedelta(hours=2)
    draft_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
            status="failed", status_reason="items used up their attempts"))
        conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id, batch_items.c.item_index == 0)
                     .values(status="failed", last_error="overloaded", last_error_code="overloaded"))
        conn.execute(conversation_drafts.insert().values(
            id=draft_id, user_id=current_actor(engine).user_id, template="customer_support",
            params={"template": "customer_support", "persona": "p", "emotion": "e", "topic": "t", "turns": 4},
            partial_text="User: hello\n\nAssistant: hi", turns=[], status="in_progress", progress=0.25,
            created_at=old, updated_at=old, expires_at=old + timedelta(hours=24)))
    return draft_id


def test_recovery_lists_what_stopped_with_one_click_actions(open_page, engine, seeded):
    """Recovery lists the failed batch (retry failed recommended) and the orphaned draft, and previews cleanup."""
    _stall(engine, seeded["batch_id"])
    at = open_page("recovery")
    assert not at.exception
    labels = [b.label for b in at.button]
    assert {"Retry failed", "Resume", "Cancel (discard the rest)", "Discard"} <= set(labels)
    text = _texts(at)
    assert "items used up their attempts" in text and "Recommended:" in text
    assert "Expired data that cleanup would remove now" in text
    assert not at.error


def test_recovery_retry_failed_requeues_only_the_failed_item(open_page, engine, seeded):
    """One click on Retry failed puts the batch back in the queue with its failed item pending."""
    from core.batches import service

    _stall(engine, seeded["batch_id"])
    at = open_page("recovery")
    at.button(key=f"recovery.Retry failed_{seeded['batch_id']}").click().run()
    assert not at.exception
    status = service.get_batch_status(engine, seeded["batch_id"])
    assert status["state"] == "queued" and status["failed"] == 0 and status["pending"] == 3


def test_a_failing_button_callback_is_recorded_and_shown_not_raised(open_page, engine, seeded, monkeypatch):
    """A Recovery button whose service raises shows the failure with its error id, recorded as the person's."""
    from core.batches import service

    def _broken(*_args, **_kwargs):
        raise RuntimeError("database went away mid-resume")

    _stall(engine, seeded["batch_id"])
    monkeypatch.setattr(service, "resume_batch", _broken)
    at = open_page("recovery")
    at.button(key=f"recovery.Retry failed_{seeded['batch_id']}").click().run()
    assert not at.exception, at.exception
    failure = [e.value for e in at.error if e.value.startswith("That action failed.")]
    assert len(failure) == 1
    caption = shown(next(c.value for c in at.caption if c.value.startswith("Error id:")))
    assert "ui.recovery.run" in caption and "not recorded" not in caption
    flush()
    with engine.connect() as conn:
        owners = dict(conn.execute(select(error_logs.c.component, error_logs.c.user_id)).all())
    assert owners.get("ui.recovery.run", "missing") == current_actor(engine).user_id
    assert "Retry failed" in {b.label for b in at.button}  # the page itself still renders
    at.run()
    assert not [e for e in at.error if e.value.startswith("That action failed.")]  # shown once


def test_a_new_critical_error_raises_a_toast(open_page, engine):
    """A critical error recorded after the page opened shows a toast on the next run."""
    from e2e_data import insert_critical_error

    at = open_page("home")
    error_id = insert_critical_error(engine)
    at.run()
    assert any("Critical error" in t.value and error_id in t.value for t in at.toast)


def test_error_detail_shows_redacted_context_without_trace(open_page, engine):
    """Opening an error by id shows its context with secrets removed and no stack trace in production."""
    from core.errorlog import flush, record
    from core.errors import APIError

    error_id = record(APIError("boom", code="server_error"), component="test.detail",
                      context={"api_key": "sk-ant-api03-" + "x" * 40, "note": "kept"})
    flush()
    at = open_page("errors")
    at.text_input(key="errors.open_id").input(error_id).run()
    assert not at.exception
    shown = "\n".join(str(j.value) for j in at.json)
    assert "kept" in shown and "sk-ant-api03" not in shown
    assert not any("Traceback" in c.value for c in at.code)
    assert "Resolve" in [b.label for b in at.button]


def test_batches_refuses_a_zero_count_beside_the_field(open_page, engine):
    """A count of 0 is refused under the count field, with no estimate and no batch created."""
    from core.batches import service

    at = open_page("batches")
    at.number_input(key="batches.count").set_value(0).run()
    assert not at.exception
    assert any("count" in e.value.lower() for e in at.error)
    assert "Launch batch" not in [b.label for b in at.button]
    assert len(service.list_batches(engine)) == 1


def test_batches_estimate_and_detail_say_which_limit_binds(open_page, seeded, monkeypatch):
    """With only the RPM raised to 1,200, the online estimate and the batch detail name the output-token limit."""
    from core.config import reload_settings

    monkeypatch.setenv("STUDIO_RATE_LIMIT_RPM", "1200")
    reload_settings()
    at = open_page("batches")
    expected = "bound by output tokens per minute (16,000): ~33 conversations/min"
    assert any(f"Online time: {expected}" in c.value for c in at.caption), [c.value for c in at.caption]
    at.button(key=f"batches.list_details_{seeded['batch_id']}").click().run()
    assert not at.exception
    assert any(f"Pace: {expected}" in c.value for c in at.caption), [c.value for c in at.caption]


def test_batch_detail_shows_the_rate_limit_wait(open_page, engine, seeded):
    """A running batch whose calls wait for the limiter shows "waiting for rate limit: N s" in its detail."""
    from core.batches.service import note_rate_limit_wait
    from core.store.schema import batch_jobs

    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == seeded["batch_id"]).values(status="running"))
    note_rate_limit_wait(engine, seeded["batch_id"], 12.2)
    at = open_page("batches")
    at.button(key=f"batches.list_details_{seeded['batch_id']}").click().run()
    assert not at.exception
    assert [w.value for w in at.warning if "rate limit" in w.value] == ["waiting for rate limit: 13 s"]


def test_settings_page_groups_the_three_limits_and_says_they_work_together(open_page):
    """The Rate limits group holds RPM, input TPM and output TPM, with a note naming the one that binds."""
    at = open_page("settings")
    assert not at.exception
    keys = {n.key for n in at.text_input}
    assert {"settings.rate_limit_rpm", "settings.rate_limit_input_tpm", "settings.rate_limit_output_tpm"} <= keys
    note = next(c.value for c in at.caption if "work together" in c.value)
    assert "bound by output tokens per minute (16,000)" in note


def test_every_page_shows_the_chaos_banner_while_the_switch_is_on(open_page):
    """With the sandbox forcing 401s, Home and Batches both say so, with a link to turn it off."""
    from core.llm.client import get_client, reset_client

    get_client().sandbox.configure(force_status=401)
    try:
        for page in ("home", "batches"):
            at = open_page(page)
            banners = [w.value for w in at.warning if "Chaos switch on" in w.value]
            assert banners and "status 401" in banners[0] and "(/settings)" in banners[0], page
    finally:
        reset_client()
    at = open_page("home")
    assert not [w.value for w in at.warning if "Chaos switch on" in w.value]
