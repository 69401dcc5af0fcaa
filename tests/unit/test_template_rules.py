"""Template validation: every rule, said beside its field, with the message a person reads."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ErrorCode
from core.templates import EdgeCase, TemplateContent, TemplateInvalid, check, problems
from core.templates.builtin import BUILTINS


def _content(**changes) -> TemplateContent:
    base = TemplateContent(
        title="Insurance claim", description="A policyholder reports a claim.",
        system_prompt="You are a claims handler at Harbor Mutual.",
        user_template="The policyholder is {persona}, feels {emotion}, calls about {topic} and mentions {customer}. "
                      "{turns} messages.",
        variables={"persona": ("a farmer",), "emotion": ("worried",), "topic": ("a flooded barn",),
                   "customer": ("a long-time customer", "a new customer")},
        edge_cases=(EdgeCase("switches language", "Halfway through, {persona} switches to Spanish.", 2),))
    return replace(base, **changes)


def _only(content: TemplateContent) -> tuple[str, str]:
    found = problems(content)
    assert len(found) == 1, found
    return found[0].field, found[0].message


def test_a_complete_template_with_a_custom_variable_and_an_edge_case_keeps_every_rule():
    """Nothing to say about a template whose every variable is used and every value is there."""
    assert problems(_content()) == []


def test_every_builtin_keeps_every_rule():
    """The six seeded templates are valid templates."""
    for template in BUILTINS.values():
        assert problems(template.content, slug=template.name) == [], template.name


def test_an_unknown_placeholder_suggests_the_variable_it_is_close_to():
    """`{custmer}` is refused with the variable it was meant to be, beside the instruction field."""
    content = _content(user_template=_content().user_template.replace("{customer}", "{custmer}"))
    found = problems(content)
    assert (found[0].field, found[0].message) == (
        "user_template", "`{custmer}` is not a variable of this template — did you mean `{customer}`?")
    assert found[0].code is ErrorCode.UNKNOWN_PLACEHOLDER


def test_an_unknown_placeholder_far_from_every_variable_lists_the_variables():
    """With nothing close, the refusal lists the template's placeholders in declared order."""
    content = _content(user_template=_content().user_template + " {zzzz}")
    assert _only(content) == ("user_template", "`{zzzz}` is not a variable of this template; its placeholders are "
                              "`{persona}`, `{emotion}`, `{topic}`, `{customer}`, `{turns}`.")


def test_an_unknown_placeholder_in_an_edge_case_is_said_beside_that_instruction():
    """Edge-case instructions are checked like the first-user-turn instruction, field edge_cases.1.instruction."""
    content = _content(edge_cases=(EdgeCase("twist", "Then {emoton} changes.", 1),))
    assert _only(content) == ("edge_cases.1.instruction",
                              "`{emoton}` is not a variable of this template — did you mean `{emotion}`?")


def test_a_declared_variable_that_no_prompt_uses_is_refused():
    """A custom variable no text uses is said beside that variable."""
    content = _content(user_template="{persona} {emotion} {topic} in {turns} messages.")
    assert _only(content) == ("variables.customer", "The variable `{customer}` is declared but no prompt uses it; "
                              "use it in the first-user-turn instruction or an edge case, or remove it.")


def test_a_variable_used_only_by_an_edge_case_counts_as_used():
    """An edge case may be the one place a variable appears."""
    content = _content(user_template="{persona} {emotion} {topic} in {turns} messages.",
                       edge_cases=(EdgeCase("loyal", "Mention that they are {customer}.", 1),))
    assert problems(content) == []


@pytest.mark.parametrize("text", ["About {topic", "About topic}", "About {topic {persona}", "About {persona}}"])
def test_unbalanced_braces_are_refused(text):
    """A lone brace is refused beside the field, with how to write a literal one."""
    field, message = _only(_content(user_template=text + " {persona} {emotion} {topic} {customer} {turns}"))
    assert field == "user_template"
    assert message.startswith("The braces are not balanced (") and message.endswith(
        "). Write a literal brace as {{ or }}.")


def test_doubled_braces_are_literal_text_not_a_problem():
    """{{ and }} are literal braces."""
    assert problems(_content(user_template=_content().user_template + " Reply as JSON {{\"ok\": true}}.")) == []


def test_an_empty_list_of_values_is_refused():
    """A variable without a single value is refused beside it."""
    variables = {**_content().variables, "customer": ()}
    assert _only(_content(variables=variables)) == (
        "variables.customer", "The variable `{customer}` has no values; give at least one.")


def test_a_standard_variable_is_required():
    """Every template declares persona, emotion and topic."""
    variables = {k: v for k, v in _content().variables.items() if k != "emotion"}
    found = problems(_content(variables=variables, user_template="{persona} {topic} {customer} {turns}"))
    assert ("variables.emotion", "Every template declares `{emotion}` with at least one value.") in [
        (p.field, p.message) for p in found]


@pytest.mark.parametrize("low, high, message", [
    (0, 12, "The turn range must be within 2–40; got 0–12."),
    (2, 42, "The turn range must be within 2–40; got 2–42."),
    (12, 8, "The turn range's lowest (12) is above its highest (8)."),
    (5, 5, "The turn range 5–5 holds no even number of messages (a conversation ends with the assistant's reply)."),
])
def test_a_turn_range_outside_2_to_40_is_refused(low, high, message):
    """The turn range stays within 2–40, lowest first, and holds an even count."""
    assert _only(_content(min_turns=low, max_turns=high)) == ("turns", message)


def test_a_prompt_longer_than_the_model_accepts_is_refused(monkeypatch):
    """A rendered prompt that, with the reply, exceeds the model's context is refused with the numbers."""
    monkeypatch.setenv("STUDIO_MODEL_CONTEXT_TOKENS", "3000")
    from core.config import reload_settings

    reload_settings()
    content = _content(system_prompt="You handle claims. " * 600, model="claude-haiku-4-5", max_tokens=1000)
    field, message = _only(content)
    assert field == "user_template"
    assert message.startswith("The rendered prompt is about ") and message.endswith(
        " tokens; with 1,000 tokens for the reply it is more than the 3,000 tokens claude-haiku-4-5 accepts.")


def test_an_unknown_model_and_max_tokens_out_of_range_are_refused():
    """The default model must be a listed one; max tokens from 1 to the configured longest reply."""
    found = {p.field: p.message for p in problems(_content(model="gpt-4", max_tokens=0))}
    assert found["model"] == "Unknown model 'gpt-4'. Choose a model from the list."
    assert found["max_tokens"] == "Max tokens must be a whole number from 1 to 4,096; got 0."


def test_edge_case_names_must_differ_and_weights_be_positive():
    """Two edge cases of one name, or a weight of 0, are refused beside the edge case."""
    twist = EdgeCase("twist", "Then {persona} leaves.", 1)
    found = {p.field: p.message for p in problems(_content(edge_cases=(twist, replace(twist, weight=0))))}
    assert found["edge_cases.2.name"] == "Two edge cases are called 'twist'; names must differ."
    assert found["edge_cases.2.weight"] == "The weight of edge case 2 must be a number above 0; got 0."


def test_a_bad_slug_is_refused():
    """A template name is lower-case letters, digits and underscores."""
    found = problems(_content(), slug="Insurance Claim")
    assert found[0].field == "slug" and "is not a template name" in found[0].message


def test_check_raises_with_every_problem_and_the_first_field():
    """check() raises TemplateInvalid carrying every problem; its field is the first one's."""
    with pytest.raises(TemplateInvalid) as info:
        check(_content(title=" ", min_turns=0))
    assert info.value.field == "title"
    assert [p.field for p in info.value.problems] == ["title", "turns"]
    assert info.value.user_message == "The title is empty."
