"""The Templates page (AppTest): list with usage, an edit checked beside each field, save as a new version, preview."""

from __future__ import annotations

from e2e_data import shown
from streamlit.testing.v1 import AppTest

from core.templates.store import get_template, template_history

PREFIX = "templates.edit.tutoring.1"


def _texts(at: AppTest) -> str:
    return "\n".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning,
                                             *at.success, *at.title, *at.subheader])


def _edit_tutoring(open_page) -> AppTest:
    at = open_page("templates")
    assert not at.exception
    at.selectbox(key="templates.pick").select("tutoring").run()
    assert not at.exception
    return at


def test_the_page_lists_every_template_with_its_usage(open_page, seeded):
    """The list has the six built-ins with version and batch counts; the editor offers a new template."""
    at = open_page("templates")
    assert not at.exception
    frame = at.dataframe[0].value
    assert set(frame["Name"]) >= {"customer_support", "tutoring"}
    assert int(frame.loc[frame["Name"] == seeded["template"], "Batches"].iloc[0]) == 1
    assert "Fill in the fields" in _texts(at)


def test_an_unknown_placeholder_is_shown_beside_the_instruction_and_nothing_is_saved(open_page, engine):
    """`{topc}` in the instruction shows the did-you-mean message under it, Save is disabled, no version is made."""
    at = _edit_tutoring(open_page)
    text = at.text_area(key=f"{PREFIX}.user").value
    at.text_area(key=f"{PREFIX}.user").input(text.replace("{topic}", "{topc}")).run()
    assert not at.exception
    assert "`{topc}` is not a variable of this template — did you mean `{topic}`?" in _texts(at)
    save = next(b for b in at.button if b.label == "Save as version 2")
    assert save.disabled
    assert [t.version for t in template_history(engine, "tutoring")] == [1]


def test_an_edit_with_a_custom_variable_and_an_edge_case_saves_as_version_2_and_previews(open_page, engine):
    """A custom variable used by an edge case, saved: version 2 holds both; the preview renders the twist."""
    at = _edit_tutoring(open_page)
    at.text_area(key=f"{PREFIX}.custom").input("tool: a whiteboard; a calculator").run()
    at.text_area(key=f"{PREFIX}.edges").input("tool twist | 2 | Halfway through, the learner picks up {tool}.").run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    next(b for b in at.button if b.label == "Save as version 2").click().run()
    assert not at.exception
    saved = get_template(engine, "tutoring")
    assert saved.version == 2 and saved.content.custom_variables == ("tool",)
    assert [(e.name, e.weight) for e in saved.content.edge_cases] == [("tool twist", 2)]
    at.selectbox(key="templates.pv.tutoring.edge").select("tool twist").run()
    assert not at.exception
    assert any("the learner picks up a whiteboard" in c.value for c in at.code)


def test_the_diff_shows_what_changed_between_two_versions(open_page, engine):
    """After a saved title change, Compare versions shows the old and new title lines."""
    at = _edit_tutoring(open_page)
    at.text_input(key=f"{PREFIX}.title").input("Tutoring, patient").run()
    next(b for b in at.button if b.label == "Save as version 2").click().run()
    assert not at.exception
    diffs = [c.value for c in at.code if c.language == "diff"]
    assert diffs and "-title: Tutoring\n+title: Tutoring, patient" in diffs[0]


def test_the_preview_says_the_system_prompt_is_below_the_cache_minimum(open_page):
    """A built-in's short system prompt is counted by the sandbox and said to be too short to cache."""
    at = _edit_tutoring(open_page)
    said = [i.value for i in at.info if "tokens" in i.value]
    assert said and "below the 1,024 tokens" in shown(said[0])


def test_generate_offers_a_stored_templates_custom_variable_and_edge_case(open_page, engine):
    """On Generate, a stored template's custom variable and edge case are fields; the draft records them and the version."""
    from dataclasses import replace

    from core.drafts import get_draft
    from core.templates import EdgeCase

    tutoring = get_template(engine, "tutoring")
    content = replace(tutoring.content, user_template=tutoring.user_template + " They use {tool}.",
                      variables={**tutoring.content.variables, "tool": ("a whiteboard", "a calculator")},
                      edge_cases=(EdgeCase("interrupted", "Halfway through, the call drops.", 1),))
    from core.templates.store import save_template

    save_template(engine, "tutoring", content)
    at = open_page("generate")
    at.selectbox(key="generate.template").select("tutoring").run()
    tool = at.selectbox(key="generate.tool_tutoring")
    assert list(tool.options) == ["a whiteboard", "a calculator"]
    tool.set_value("a calculator")
    at.selectbox(key="generate.edge_tutoring").set_value("interrupted")
    at.button(key="generate.go").click().run()
    assert not at.exception
    job = at.session_state["generate.job"]
    job.cancel()
    job.join(30)
    params = get_draft(engine, job.draft.id)["params"]
    assert (params["template_version"], params["variables"], params["edge_case"]) == (
        2, {"tool": "a calculator"}, "interrupted")
