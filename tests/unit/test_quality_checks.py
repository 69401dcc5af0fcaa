"""Each quality check passes a conversation that meets it and fails one that does not, saying why."""

from __future__ import annotations

import pytest

from core.config import get_settings
from core.llm.sandbox.text import Brief, compose_turns
from core.quality import CHECK_NAMES, HARD_CHECKS, POINTS, check_conversation, score

PARAMS = {"persona": "a retired teacher who loves gardening", "emotion": "frustrated",
          "topic": "my wifi keeps dropping", "turns": 4}


def _turns(*contents: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]


GOOD = _turns(
    "I'm so frustrated: my wifi keeps dropping every evening. I'm a retired teacher and I garden all day.",
    "That sounds annoying. Restart the router first, then check whether other devices lose the connection too.",
    "Only the laptop drops it, the phone stays connected. What should I look at next?",
    "Then update the laptop's network driver and forget the network once, so it reconnects with fresh settings.",
)


def _check(turns, params=PARAMS, **settings):
    s = get_settings().replace(**settings) if settings else get_settings()
    return {c.name: c for c in check_conversation(turns, params, s)}


def test_a_well_formed_conversation_passes_every_check():
    """Every check passes a conversation that alternates, has the count asked for and shows its brief."""
    results = _check(GOOD)
    assert [n for n, c in results.items() if not c.passed] == []
    assert all(c.detail == "" for c in results.values())


def test_a_sandbox_conversation_passes_every_check():
    """The sandbox's own text, asked for a brief, passes every check (the gate does not fight its test double)."""
    brief = Brief(PARAMS["persona"], PARAMS["emotion"], PARAMS["topic"], 6)
    turns = [{"role": r.lower(), "content": c} for r, c in compose_turns(brief, "key")]
    results = _check(turns, {**PARAMS, "turns": 6})
    assert [n for n, c in results.items() if not c.passed] == []


def test_hard_checks_are_the_structural_ones():
    """Roles, turn count and placeholders are hard; the others soft."""
    results = _check(GOOD)
    assert {n for n, c in results.items() if c.hard} == HARD_CHECKS == {"roles_alternate", "turn_count",
                                                                        "no_placeholder"}


FAILURES = [
    ("roles_alternate", [{"role": "assistant", "content": GOOD[1]["content"]}, *GOOD[:1], *GOOD[2:]], PARAMS,
     "should be from the user"),
    ("roles_alternate", GOOD[:3], {**PARAMS, "turns": 3}, "ends with the assistant"),
    ("turn_count", GOOD[:2], PARAMS, "It has 2 messages; 4 were asked for."),
    ("no_placeholder", _turns(GOOD[0]["content"], "Hello {persona}, restart the router.", *[
        t["content"] for t in GOOD[2:]]), PARAMS, "{persona}"),
    ("no_placeholder", _turns(*[t["content"] for t in GOOD[:3]], "Try the {fix_step} from the manual."), PARAMS,
     "{fix_step}"),
    ("turn_length", _turns(*[t["content"] for t in GOOD[:3]], "k"), PARAMS, "has 1 character; at least 2"),
    ("no_meta_text", _turns("Here is a conversation about wifi. " + GOOD[0]["content"],
                            *[t["content"] for t in GOOD[1:]]), PARAMS, "Here is a conversation"),
    ("no_meta_text", _turns(GOOD[0]["content"], GOOD[1]["content"] + "\nUser: thanks!",
                            *[t["content"] for t in GOOD[2:]]), PARAMS, "User:"),
    ("no_refusal", _turns(*[t["content"] for t in GOOD[:3]],
                          "As an AI language model, I cannot help with that request."), PARAMS,
     "As an AI language model"),
    ("no_refusal", _turns(*[t["content"] for t in GOOD[:3]], "I'm sorry, but I can't do that."), PARAMS,
     "sorry, but I can't"),
    ("no_repetition", _turns(*[t["content"] for t in GOOD[:3]], " ".join([GOOD[1]["content"]] * 3)), PARAMS,
     "repeat an earlier one"),
    ("persona_present", GOOD, {**PARAMS, "persona": "a marine biologist on a research vessel"},
     "The persona does not show"),
    ("emotion_present", GOOD, {**PARAMS, "emotion": "jubilant"}, "jubilant"),
    ("topic_present", GOOD, {**PARAMS, "topic": "mortgage refinancing rates"}, "mortgage"),
]


@pytest.mark.parametrize(("name", "turns", "params", "said"), FAILURES,
                         ids=[f"{f[0]}-{i}" for i, f in enumerate(FAILURES)])
def test_a_conversation_that_breaks_a_check_fails_it_with_a_detail(name, turns, params, said):
    """The broken check fails, names what is wrong in its detail, and only checks that should fail do."""
    results = _check(turns, params)
    assert not results[name].passed
    assert said in results[name].detail


def test_every_check_has_a_failure_case():
    """The failure cases above cover every named check."""
    assert {f[0] for f in FAILURES} == set(CHECK_NAMES)


def test_a_turn_longer_than_the_setting_fails_the_length_check():
    """A message past quality_max_turn_chars fails turn_length, naming the limit."""
    results = _check(GOOD, quality_max_turn_chars=50)
    assert not results["turn_length"].passed
    assert "at most 50" in results["turn_length"].detail


def test_ngram_repetition_fails_even_without_repeated_sentences():
    """The same long phrase inside different sentences counts as repetition."""
    phrase = "restart the router and check the cable behind the desk"
    turns = _turns(GOOD[0]["content"], f"First {phrase}.", f"Then what? I did {phrase} already.",
                   f"Well, {phrase} again, slowly.")
    result = _check(turns)["no_repetition"]
    assert not result.passed
    assert "phrases occur more than once" in result.detail


def test_a_persona_with_most_of_its_words_present_passes():
    """A missing minor word ("loves") does not fail the persona check; most words must be there."""
    assert _check(GOOD)["persona_present"].passed


def test_turn_count_passes_when_nothing_was_asked_for():
    """An older row without a requested count is not failed for it."""
    assert _check(GOOD, {k: v for k, v in PARAMS.items() if k != "turns"})["turn_count"].passed


def test_the_score_is_the_sum_of_the_passed_checks_points():
    """A full pass scores 100; failing the refusal check loses exactly its points, shown in the parts."""
    full = score(check_conversation(GOOD, PARAMS))
    assert full.total == 100 and full.parts == dict(POINTS)
    refused = _turns(*[t["content"] for t in GOOD[:3]], "As an AI language model I cannot help with that.")
    partial = score(check_conversation(refused, PARAMS))
    assert partial.total == 100 - POINTS["no_refusal"]
    assert partial.parts["no_refusal"] == 0 and partial.parts["roles_alternate"] == POINTS["roles_alternate"]
