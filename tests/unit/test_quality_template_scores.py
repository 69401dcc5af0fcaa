"""A template version may carry its own routing scores; files round-trip them and bad ones are named."""

from __future__ import annotations

import dataclasses

import pytest

from core.templates import Template, problems
from core.templates.builtin import BUILTINS
from core.templates.yaml_io import TemplateFileInvalid, dump, load

BASE = BUILTINS["tech_troubleshooting"]


def test_a_template_without_scores_keeps_the_json_it_always_had():
    """No quality key is written for a version that sets no scores."""
    assert "quality" not in BASE.content.to_json()


def test_scores_round_trip_through_json_and_yaml():
    """accept / review come back from the stored JSON and from the exported file."""
    content = dataclasses.replace(BASE.content, quality_accept=95, quality_review=70)
    assert content.to_json()["quality"] == {"accept": 95, "review": 70}
    assert type(content).from_json(content.to_json()) == content
    slug, loaded = load(dump(Template("scored", content)))
    assert (slug, loaded) == ("scored", content)
    assert problems(content) == []


@pytest.mark.parametrize(("accept", "review", "field", "said"), [
    (101, None, "quality.accept", "from 0 to 100"),
    (50, 70, "quality.review", "above the accept score"),
])
def test_out_of_range_or_crossed_scores_are_refused_beside_their_field(accept, review, field, said):
    """A score outside 0-100, or a review score above the accept score, is a problem named by its field."""
    content = dataclasses.replace(BASE.content, quality_accept=accept, quality_review=review)
    found = [p for p in problems(content) if p.field.startswith("quality")]
    assert [p.field for p in found] == [field] and said in found[0].message


def test_a_file_with_a_malformed_quality_field_names_it():
    """quality must be a mapping of accept and review."""
    text = dump(BASE).replace("max_tokens: null", "max_tokens: null\nquality: {accept: high}")
    with pytest.raises(TemplateFileInvalid) as err:
        load(text)
    assert [p.field for p in err.value.problems] == ["quality.accept"]


def test_the_judge_switch_round_trips_and_is_off_by_default():
    """judge: true is written only when on, and reads back from JSON and YAML."""
    assert BASE.content.judge is False and "judge" not in BASE.content.to_json()
    content = dataclasses.replace(BASE.content, judge=True)
    assert content.to_json()["judge"] is True
    assert type(content).from_json(content.to_json()) == content
    assert load(dump(Template("judged", content)))[1] == content


def test_a_judge_switch_that_is_not_true_or_false_is_named():
    """judge: maybe is refused beside its field."""
    with pytest.raises(TemplateFileInvalid) as err:
        load(dump(BASE) + "judge: maybe\n")
    assert [p.field for p in err.value.problems] == ["judge"]
