"""Exact and near-duplicates: the normalised hash, MinHash signatures and the in-memory LSH index."""

from __future__ import annotations

import numpy as np

from core.config import get_settings
from core.llm.sandbox.text import Brief, compose_turns
from core.quality import (
    NearDuplicateIndex,
    assess,
    bands_for,
    content_hash,
    normalise,
    shared_passage,
    signature_bytes,
    signature_from_bytes,
    similarity,
)
from core.templates.builtin import BUILTINS

TEMPLATE = BUILTINS["tech_troubleshooting"]


def _sandbox(i: int, persona: str, emotion: str, topic: str, turns: int = 6) -> list[dict[str, str]]:
    """A conversation as the sandbox writes it for this brief (key `i` picks its sentences)."""
    return [{"role": r.lower(), "content": c} for r, c in compose_turns(Brief(persona, emotion, topic, turns),
                                                                       f"{TEMPLATE.name}-{i}")]


def _params(persona: str, emotion: str, topic: str, turns: int = 6) -> dict[str, object]:
    return {"persona": persona, "emotion": emotion, "topic": topic, "turns": turns}


def _near_copy(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same conversation with its last message rewritten (the rest copied word for word)."""
    return [*turns[:-1], {"role": "assistant", "content": "Glad it works now. Come back any time it drops again."}]


def test_text_that_differs_only_in_case_spacing_and_punctuation_has_one_hash():
    """Normalising lowercases and collapses whitespace and punctuation: an exact duplicate keeps its hash."""
    a = normalise("Hello,   World!\nHow are you?")
    b = normalise("hello world -- how ARE you")
    assert a == b == "hello world how are you"
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(normalise("hello world how are we"))


def test_a_signature_is_stored_compactly_and_reads_back_equal():
    """128 hash values take 512 bytes and come back as the same signature."""
    turns = _sandbox(1, TEMPLATE.personas[0], TEMPLATE.emotions[0], TEMPLATE.topics[0])
    sig = assess(turns, _params(TEMPLATE.personas[0], TEMPLATE.emotions[0], TEMPLATE.topics[0])).signature
    data = signature_bytes(sig)
    assert len(data) == 512
    assert np.array_equal(signature_from_bytes(data), sig)


def test_a_near_copy_of_a_sandbox_conversation_is_flagged():
    """Rewriting one of eight messages leaves a near-duplicate the index finds at the default threshold."""
    p, e, t = TEMPLATE.personas[0], TEMPLATE.emotions[0], TEMPLATE.topics[0]
    original = assess(_sandbox(1, p, e, t, 8), _params(p, e, t, 8))
    copy = assess(_near_copy(_sandbox(1, p, e, t, 8)), _params(p, e, t, 8))
    assert original.content_hash != copy.content_hash  # not an exact duplicate
    threshold = get_settings().quality_near_duplicate_threshold
    index = NearDuplicateIndex(num_perm=get_settings().quality_minhash_perms, threshold=threshold)
    index.add("original", original.signature, accepted=True, batch_id=None)
    match = index.nearest(copy.signature)
    assert match is not None and match.conversation_id == "original"
    assert match.similarity >= threshold


def test_different_sandbox_conversations_of_the_same_template_are_not_flagged():
    """200 sandbox conversations of one template, each a different item, flag no near-duplicate among them."""
    index = NearDuplicateIndex(num_perm=128, threshold=0.8)
    flagged = []
    for i in range(200):
        p = TEMPLATE.personas[i % len(TEMPLATE.personas)]
        e = TEMPLATE.emotions[(i // 3) % len(TEMPLATE.emotions)]
        t = TEMPLATE.topics[(i // 7) % len(TEMPLATE.topics)]
        sig = assess(_sandbox(i, p, e, t), _params(p, e, t)).signature
        if (m := index.nearest(sig, batch_id="b1")) is not None:
            flagged.append((i, m))
        index.add(f"c{i}", sig, accepted=False, batch_id="b1")
    assert flagged == []
    assert len(index) == 200


def test_the_index_compares_with_the_accepted_set_and_the_same_batch_only():
    """A conversation of another batch that is not accepted is out of scope; accepted ones are always in."""
    p, e, t = TEMPLATE.personas[0], TEMPLATE.emotions[0], TEMPLATE.topics[0]
    sig = assess(_sandbox(1, p, e, t), _params(p, e, t)).signature
    index = NearDuplicateIndex(num_perm=128, threshold=0.8)
    index.add("other-batch", sig, accepted=False, batch_id="b2")
    assert index.nearest(sig, batch_id="b1") is None
    assert index.nearest(sig, batch_id="b2").conversation_id == "other-batch"
    index.set_accepted("other-batch", True)
    assert index.nearest(sig, batch_id="b1").conversation_id == "other-batch"
    assert index.nearest(sig, batch_id=None, exclude="other-batch") is None


def test_many_rows_merge_into_the_sorted_arrays_and_are_still_found():
    """Past the merge size, rows added one by one and in bulk are all found again, and a removed one is not."""
    rng = np.random.default_rng(7)
    sigs = rng.integers(0, 2**32 - 1, size=(6000, 64), dtype=np.uint32)
    index = NearDuplicateIndex(num_perm=64, threshold=0.8)
    index.add_many([f"bulk{i}" for i in range(5000)], sigs[:5000], accepted=[True] * 5000, batch_ids=[None] * 5000)
    for i in range(5000, 6000):
        index.add(f"one{i}", sigs[i], accepted=True, batch_id=None)
    assert index.nearest(sigs[17]).conversation_id == "bulk17"
    assert index.nearest(sigs[5500]).conversation_id == "one5500"
    index.remove("bulk17")
    assert index.nearest(sigs[17]) is None
    assert len(index) == 5999


def test_dropping_a_batch_keeps_its_accepted_rows():
    """A batch dropped from memory loses its unaccepted rows; its accepted ones stay in the accepted set."""
    rng = np.random.default_rng(8)
    sigs = rng.integers(0, 2**32 - 1, size=(3, 128), dtype=np.uint32)
    index = NearDuplicateIndex(num_perm=128, threshold=0.8)
    index.add_many(["a", "b", "c"], sigs, accepted=[True, False, False], batch_ids=["b1", "b1", None])
    assert index.drop_batch("b1") == 1
    assert "b" not in index and len(index) == 2
    assert index.nearest(sigs[0], batch_id="b2").conversation_id == "a"


def test_bands_follow_the_threshold():
    """A higher threshold takes fewer, longer bands; bands x rows never exceed the signature."""
    low, high = bands_for(0.5, 128), bands_for(0.9, 128)
    assert low[0] * low[1] <= 128 and high[0] * high[1] <= 128
    assert high[1] > low[1]


def test_the_shared_passage_is_the_longest_run_of_common_words_redacted():
    """The passage is the conversation's own words they share; a secret inside it is redacted."""
    key = "sk-ant-api03-" + "a" * 40
    text = f"Hello there. My key is {key} and the router blinks red all night long. Bye."
    other = f"Something else. my key is {key} and the router blinks red all night long! Different end."
    passage = shared_passage(text, other, max_chars=300)
    assert "the router blinks red all night long" in passage
    assert key not in passage
    assert similarity(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
