"""Template files: the YAML a template exports reads back to the same template, and a wrong file names its field."""

from __future__ import annotations

import pytest

from core.templates import EdgeCase, Template, TemplateContent
from core.templates.builtin import BUILTINS
from core.templates.yaml_io import HEADER, TemplateFileInvalid, dump, load

CUSTOM = Template("insurance_claim", TemplateContent(
    title="Insurance claim", description="A policyholder reports a claim: été, 東京, émoji 🚗.",
    system_prompt="You are a claims handler.\nYou never promise a payout.\n",
    user_template="{persona} feels {emotion} about {topic}; they are {customer}. {turns} messages.\nUse {{braces}}.",
    variables={"persona": ("a farmer", "a nurse: on nights"), "emotion": ("worried",), "topic": ("a flood", "- a fire"),
               "customer": ("new", "'loyal'", "yes", "3")},
    edge_cases=(EdgeCase("switches language", "Halfway, {persona} switches to Spanish.", 2),
                EdgeCase("plain", "Nothing unusual happens.", 0.5)),
    min_turns=4, max_turns=12, model="claude-haiku-4-5", max_tokens=2000))


@pytest.mark.parametrize("template", [*BUILTINS.values(), CUSTOM], ids=lambda t: t.name)
def test_export_then_import_then_export_is_byte_identical(template):
    """dump(load(dump(t))) is the same bytes, and load gives back the same name and content."""
    text = dump(template)
    slug, content = load(text.encode("utf-8"))
    assert (slug, content) == (template.name, template.content)
    assert dump(Template(slug, content)).encode("utf-8") == text.encode("utf-8")


def test_the_file_starts_with_its_header_and_has_no_version():
    """A file says what it is, and carries no version number (importing makes the next one)."""
    text = dump(CUSTOM)
    assert text.startswith(HEADER)
    assert "\nversion:" not in text and "\nname: insurance_claim\n" in text


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(TemplateFileInvalid) as info:
        load(text)
    return [(p.field, p.message) for p in info.value.problems]


def test_a_field_that_is_not_in_the_schema_is_named():
    """An unknown top-level key is refused with the list of fields."""
    found = _problems(dump(CUSTOM) + "colour: blue\n")
    assert found == [("colour", "is not a field of a template file (they are: name, title, description, "
                                "system_prompt, user_template, variables, edge_cases, turns, model, max_tokens, quality, "
                                "judge).")]


def test_a_missing_required_field_is_named():
    """A file without a title says so."""
    text = dump(CUSTOM).replace("title: Insurance claim\n", "")
    assert _problems(text) == [("title", "is missing.")]


def test_a_number_where_text_belongs_is_named_with_its_position():
    """A bare number in a value list must be quoted."""
    text = dump(CUSTOM).replace("- '3'", "- 3")
    assert _problems(text) == [("variables.customer", "value 4 must be text; put it in quotes.")]


def test_broken_yaml_names_the_line_and_column():
    """A syntax error says where it is."""
    found = _problems("name: x\ntitle: [unclosed\n")
    assert found[0][0] == "file" and found[0][1].startswith("It is not valid YAML at line 3, column 1:")


def test_invalid_utf8_is_refused_with_its_line():
    """A file that is not UTF-8 names the line of the first bad byte."""
    with pytest.raises(TemplateFileInvalid) as info:
        load(b"name: x\ntitle: caf\xe9\n")
    assert info.value.problems[0].message == "The file is not valid UTF-8 text (invalid byte at line 2); save it as UTF-8."


def test_a_content_rule_is_named_by_its_field():
    """A file whose template breaks a rule is refused with the rule's field and message (and every other one)."""
    text = dump(CUSTOM).replace("they are {customer}", "they are {custmer}")
    found = _problems(text)
    assert found[0] == ("user_template", "`{custmer}` is not a variable of this template — did you mean `{customer}`?")
    assert [f for f, _m in found[1:]] == ["variables.customer"]  # no longer used anywhere


def test_a_bad_name_is_said_beside_the_name_field():
    """The file's name must be a template name."""
    assert _problems(dump(CUSTOM).replace("name: insurance_claim", "name: Insurance Claim"))[0][0] == "name"


def test_a_file_that_is_not_a_mapping_is_refused():
    """A YAML list or scalar is not a template."""
    assert _problems("- a\n- b\n")[0][0] == "file"


def test_an_oversized_file_is_refused_before_it_is_parsed(monkeypatch):
    """A file over template_max_file_bytes is refused by its size."""
    monkeypatch.setenv("STUDIO_TEMPLATE_MAX_FILE_BYTES", "1000")
    from core.config import reload_settings

    reload_settings()
    assert _problems("x" * 1001) == [("file", "The file is 1,001 bytes; the limit is 1,000.")]
