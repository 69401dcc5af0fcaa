"""Templates and prompt construction: machine-readable parameters, format rules, field-named errors."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.generation import TEMPLATES, GenerationParams, build_prompt, get_template, validate_params

REQUIRED = {"customer_support", "tutoring", "personal_finance", "tech_troubleshooting"}


def _params(**changes) -> GenerationParams:
    base = {"template": "customer_support", "persona": "a retired teacher", "emotion": "anxious",
            "topic": "a late parcel", "turns": 6}
    base.update(changes)
    return GenerationParams(**base)


def test_the_four_required_templates_exist_with_suggestions():
    """Customer support, tutoring, personal finance and troubleshooting are built in, each with suggestions."""
    assert REQUIRED <= set(TEMPLATES)
    for t in TEMPLATES.values():
        assert t.title and t.description and len(t.system_prompt) > 100
        assert t.personas and t.emotions and t.topics
        for placeholder in ("{persona}", "{emotion}", "{topic}", "{turns}"):
            assert placeholder in t.user_template, (t.name, placeholder)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_builds_a_prompt_from_its_own_defaults(name):
    """Each template's first suggestions make a valid prompt carrying them."""
    t = get_template(name)
    system, user = build_prompt(GenerationParams(name, t.default_persona, t.default_emotion, t.default_topic, 8))
    assert system == t.system_prompt
    assert t.default_topic in user


def test_user_message_carries_the_machine_readable_lines_and_format():
    """The user message has Persona/Emotion/Topic/Turns lines and the User:/Assistant: instructions."""
    _system, user = build_prompt(_params(persona="a retired\nteacher", turns=10))
    lines = user.splitlines()
    assert "Persona: a retired teacher" in lines
    assert "Emotion: anxious" in lines
    assert "Topic: a late parcel" in lines
    assert "Turns: 10" in lines
    assert '"User:"' in user and '"Assistant:"' in user
    assert "exactly 10 messages" in user


@pytest.mark.parametrize("field", ["persona", "emotion", "topic"])
def test_a_missing_value_names_its_field(field):
    """An empty or blank persona, emotion or topic raises ValidationError naming that field."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(**{field: "   "}))
    assert info.value.field == field
    assert field in str(info.value)


def test_a_too_long_value_is_refused():
    """A persona longer than 500 characters is refused, naming the field."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(persona="x" * 501))
    assert info.value.field == "persona" and "500" in info.value.user_message
    build_prompt(_params(persona="x" * 500))


@pytest.mark.parametrize(("field", "value"), [
    ("persona", "an admin whose key is sk-ant-api03-" + "x" * 40),
    ("topic", "resetting password=hunter2hunter2 on the router"),
    ("system_prompt", "You are helpful. Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789"),
])
def test_a_secret_typed_into_a_field_is_refused_naming_the_field(field, value):
    """A key, a password or a bearer token in a persona, topic or prompt is refused before it is sent or stored."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(**{field: value}))
    assert info.value.field == field and "secret" in info.value.user_message
    assert "hunter2" not in info.value.user_message and "x" * 40 not in info.value.user_message


def test_an_ordinary_value_with_key_like_words_is_not_refused():
    """Words such as "password reset" or "API key rotation" are topics, not secrets."""
    build_prompt(_params(topic="a password reset and an API key rotation"))


@pytest.mark.parametrize("turns", [0, 1, 3, 42, 10**9, -2])
def test_turns_outside_the_even_range_2_to_40_are_refused(turns):
    """Turns must be an even number from 2 to 40; anything else names the turns field."""
    with pytest.raises(ValidationError) as info:
        validate_params(_params(turns=turns))
    assert info.value.field == "turns"


@pytest.mark.parametrize("turns", [2, 4, 40])
def test_even_turns_in_range_are_accepted(turns):
    """2, 4 and 40 turns are valid."""
    assert validate_params(_params(turns=turns)) is get_template("customer_support")


def test_turns_that_are_not_integers_are_refused():
    """A string or boolean turn count is refused rather than coerced."""
    for bad in ("6", True, 6.0):
        with pytest.raises(ValidationError) as info:
            validate_params(_params(turns=bad))
        assert info.value.field == "turns"


def test_an_unknown_template_names_the_template_field():
    """An unknown template name raises ValidationError(field='template') listing the choices."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(template="nope"))
    assert info.value.field == "template" and "customer_support" in info.value.user_message


def test_an_unknown_model_names_the_model_field():
    """A model that is not in the price table is refused; a listed one is accepted."""
    with pytest.raises(ValidationError) as info:
        validate_params(_params(model="gpt-4"))
    assert info.value.field == "model"
    assert validate_params(_params(model="claude-haiku-4-5")) is get_template("customer_support")


@pytest.mark.parametrize("text, shown", [
    ("Talk as {persona} about {weather}", "{weather}"),
    ("Use {persona!r}", "{persona!r}"),
    ("Pad {turns:>5}", "{turns:>5}"),
    ("Attribute {persona.upper}", "{persona.upper}"),
])
def test_an_unknown_placeholder_in_an_edited_template_names_the_field(text, shown):
    """A custom user template with a placeholder we do not fill raises ValidationError naming it."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(user_template=text))
    assert info.value.field == "user_template"
    assert shown in info.value.user_message
    assert "user_template" in str(info.value)


def test_unbalanced_braces_are_refused_and_doubled_braces_are_text():
    """A lone brace is a template error; {{ and }} are literal braces in the prompt."""
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(user_template="Write about {topic"))
    assert info.value.field == "user_template"
    _system, user = build_prompt(_params(user_template="JSON like {{}} about {topic}, {turns} turns"))
    assert user.startswith("JSON like {} about a late parcel, 6 turns")


def test_values_with_braces_are_inserted_as_text():
    """A persona containing braces is inserted verbatim, not parsed as a placeholder."""
    _system, user = build_prompt(_params(persona="a coder who types {persona} a lot"))
    assert "Persona: a coder who types {persona} a lot" in user.splitlines()


def test_an_edited_system_prompt_replaces_the_template_one():
    """system_prompt overrides the template's; an empty one is refused."""
    system, _user = build_prompt(_params(system_prompt="You are terse. {not a placeholder}"))
    assert system == "You are terse. {not a placeholder}"
    with pytest.raises(ValidationError) as info:
        build_prompt(_params(system_prompt="  "))
    assert info.value.field == "system_prompt"
