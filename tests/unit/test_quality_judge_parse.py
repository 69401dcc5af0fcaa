"""The judge's answer: a reason and a 1-5 score per criterion, or a plain statement of what is wrong with it."""

from __future__ import annotations

import json

import pytest

from core.quality import RUBRIC, parse_judgement
from core.quality.judge import judge_prompt


def _answer(**changes):
    data = {key: {"reason": f"fine on {key}", "score": 4} for key in RUBRIC}
    data.update(changes)
    return json.dumps(data)


def test_a_complete_answer_gives_every_score_and_reason():
    """Every rubric criterion comes back with its score and reason."""
    scores, reasons = parse_judgement(_answer())
    assert scores == dict.fromkeys(RUBRIC, 4)
    assert reasons["safety"] == "fine on safety"


@pytest.mark.parametrize(("text", "said"), [
    ('{"persona_consistency": {"reason": "ok", "score": 4}', "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (_answer(coherence=None), "coherence is missing"),
    (_answer(safety={"reason": "ok", "score": 6}), "safety has no whole score from 1 to 5"),
    (_answer(safety={"reason": "ok", "score": True}), "safety has no whole score"),
    (_answer(user_realism={"reason": " ", "score": 3}), "user_realism has no reason"),
])
def test_a_malformed_answer_is_refused_saying_why(text, said):
    """Cut JSON, another shape, a missing criterion, a score out of range or an empty reason: a ValueError naming it."""
    with pytest.raises(ValueError, match=said):
        parse_judgement(text)


def test_the_prompt_names_the_rubric_and_carries_the_transcript():
    """The request has the rubric line the sandbox recognises, the brief and every message."""
    prompt = judge_prompt([{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello"}],
                          {"persona": "a nurse", "emotion": "calm", "topic": "sleep"})
    assert prompt.startswith("Judge rubric: " + ", ".join(RUBRIC))
    assert "[user] Hi there" in prompt and "[assistant] Hello" in prompt and "a nurse" in prompt
