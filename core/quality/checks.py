"""Automatic checks on one conversation: pure functions of its turns and the parameters it was asked with.

Each check has a stable name (the review queue filters by it), says whether it is hard (a
failed hard check sends the conversation back to be generated again, whatever its score) and,
when it fails, a plain-language detail a reviewer reads. The score (core.quality.score) weighs
them; nothing here touches the store.

    check              hard  fails when
    roles_alternate    yes   roles are not user, assistant, user, ... ending with the assistant
    turn_count         yes   the number of messages differs from the number asked for
    no_placeholder     yes   a `{word}` is left in the text (a template variable never filled in)
    turn_length        no    a message is shorter or longer than the settings allow
    no_meta_text       no    the text talks about itself ("Here is a conversation...") or carries
                             "User:" / "Assistant:" labels inside a message
    no_refusal         no    the assistant refuses or speaks as an AI ("As an AI language model")
    no_repetition      no    too many sentences repeat, or too many word n-grams recur
    persona_present    no    the persona's content words appear nowhere
    emotion_present    no    ... the emotion's
    topic_present      no    ... the topic's
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.config import Settings, get_settings
from core.wording import counted

__all__ = ["CHECK_NAMES", "HARD_CHECKS", "CheckResult", "check_conversation", "content_words"]

HARD_CHECKS = frozenset({"roles_alternate", "turn_count", "no_placeholder"})
CHECK_NAMES = ("roles_alternate", "turn_count", "no_placeholder", "turn_length", "no_meta_text", "no_refusal",
               "no_repetition", "persona_present", "emotion_present", "topic_present")

_DETAIL_QUOTE_CHARS = 60  # a detail quotes this much of the offending text


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; `detail` says in words what failed (empty when it passed)."""

    name: str
    passed: bool
    hard: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "hard": self.hard, "detail": self.detail}


def _result(name: str, problem: str | None) -> CheckResult:
    return CheckResult(name, problem is None, name in HARD_CHECKS, problem or "")


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"\u201c{text[:_DETAIL_QUOTE_CHARS]}{'…' if len(text) > _DETAIL_QUOTE_CHARS else ''}\u201d"


def _where(i: int, role: str) -> str:
    return f"message {i + 1} ({role or 'no role'})"


# ---- structure -------------------------------------------------------------------------------------

def _roles_alternate(turns: Sequence[Mapping[str, Any]]) -> str | None:
    if not turns:
        return "The conversation has no messages."
    for i, turn in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        role = str(turn.get("role") or "")
        if role != expected:
            return f"{_where(i, role).capitalize()} should be from the {expected}: roles must alternate, user first."
    if turns[-1].get("role") != "assistant":
        return "The last message is from the user; a conversation ends with the assistant."
    return None


def _turn_count(turns: Sequence[Mapping[str, Any]], requested: Any) -> str | None:
    try:
        wanted = int(requested)
    except (TypeError, ValueError):
        return None  # nothing asked for (an older row): nothing to compare
    if len(turns) != wanted:
        return f"It has {counted(len(turns), 'message')}; {wanted:,} were asked for."
    return None


_PLACEHOLDER = re.compile(r"\{\{?\s*[A-Za-z_][A-Za-z0-9_]*\s*\}?\}")


def _no_placeholder(turns: Sequence[Mapping[str, Any]]) -> str | None:
    for i, turn in enumerate(turns):
        found = _PLACEHOLDER.search(_content(turn))
        if found:
            return f"{_where(i, str(turn.get('role') or '')).capitalize()} still holds the placeholder " \
                   f"{_quote(found.group())}: a template variable was never filled in."
    return None


def _turn_length(turns: Sequence[Mapping[str, Any]], s: Settings) -> str | None:
    lo, hi = s.quality_min_turn_chars, s.quality_max_turn_chars
    for i, turn in enumerate(turns):
        n = len(_content(turn).strip())
        if n < lo:
            return f"{_where(i, str(turn.get('role') or '')).capitalize()} has {counted(n, 'character')}; " \
                   f"at least {lo:,} are expected."
        if n > hi:
            return f"{_where(i, str(turn.get('role') or '')).capitalize()} has {counted(n, 'character')}; " \
                   f"at most {hi:,} are allowed."
    return None


# ---- what the text says ------------------------------------------------------------------------------

_META = re.compile(
    r"\b(?:here\s+is|here'?s|below\s+is|the\s+following\s+is)\b[^.\n]{0,40}?\b"
    r"(?:conversation|dialogue|dialog|exchange|transcript|role-?play)\b"
    r"|\b(?:end\s+of\s+(?:the\s+)?(?:conversation|dialogue|transcript))\b"
    r"|(?m:^\s*(?:user|assistant|human|ai|customer|agent)\s*:)", re.IGNORECASE)

_REFUSAL = re.compile(
    r"\bas\s+an?\s+(?:ai|artificial\s+intelligence)(?:\s+(?:language\s+)?model|\s+assistant)?\b"
    r"|\bas\s+a\s+(?:large\s+)?language\s+model\b"
    r"|\bI\s+(?:cannot|can(?:no|')t|am\s+(?:not\s+able|unable)\s+to|'m\s+(?:not\s+able|unable)\s+to)\s+"
    r"(?:help|assist)\s+(?:you\s+)?with\s+(?:that|this)\b"
    r"|\bI\s+(?:cannot|can(?:no|')t)\s+(?:help|assist)\s+with\b"
    r"|\bI(?:'m|\s+am)\s+sorry,?\s+but\s+I\s+(?:cannot|can(?:no|')t|won'?t)\b"
    r"|\bI\s+(?:don'?t|do\s+not)\s+have\s+(?:personal\s+)?(?:feelings|emotions|opinions)\b",
    re.IGNORECASE)


def _first(rx: re.Pattern[str], turns: Sequence[Mapping[str, Any]], roles: tuple[str, ...]
           ) -> tuple[int, re.Match[str]] | None:
    """The first match of `rx` in the messages of these roles, and the index of its message (one scan)."""
    picked = [(i, _content(t)) for i, t in enumerate(turns) if t.get("role") in roles]
    if not picked:
        return None
    found = rx.search("\n".join(text for _, text in picked))
    if found is None:
        return None
    offset = found.start()
    for i, text in picked:
        if offset <= len(text):
            return i, found
        offset -= len(text) + 1
    return picked[-1][0], found


def _no_meta_text(turns: Sequence[Mapping[str, Any]]) -> str | None:
    hit = _first(_META, turns, ("user", "assistant"))
    if hit is None:
        return None
    i, found = hit
    return f"{_where(i, str(turns[i].get('role') or '')).capitalize()} talks about the conversation " \
           f"instead of being part of it: {_quote(found.group())}."


def _no_refusal(turns: Sequence[Mapping[str, Any]]) -> str | None:
    hit = _first(_REFUSAL, turns, ("assistant",))
    if hit is None:
        return None
    i, found = hit
    return f"{_where(i, 'assistant').capitalize()} refuses or speaks as an AI: {_quote(found.group())}."


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MIN_SENTENCE_WORDS = 3  # "Thanks!" twice is not repetition
_SENTENCE_EDGES = " \t\r\n.!?,;:\"'()[]-\u2026\u201c\u201d"


def _no_repetition(lowered: Sequence[str], words: Sequence[list[str]], s: Settings) -> str | None:
    limit = s.quality_repetition_max_share
    seen: set[str] = set()
    repeated = total = 0
    for text in lowered:
        for part in _SENTENCE_END.split(text):
            key = part.strip(_SENTENCE_EDGES)  # lowercased already; its inner punctuation counts
            if key.count(" ") + 1 < _MIN_SENTENCE_WORDS:
                continue
            total += 1
            repeated += key in seen
            seen.add(key)
    if total and repeated / total > limit:
        return f"{repeated:,} of {counted(total, 'sentence')} repeat an earlier one (more than {limit:.0%})."
    n = s.quality_repetition_ngram_words
    grams: Counter[tuple[str, ...]] = Counter()
    for found in words:
        grams.update(zip(*(found[j:] for j in range(n)), strict=False))
    count = sum(grams.values())
    if count:
        recurring = sum(c for c in grams.values() if c > 1)
        if recurring / count > limit:
            return f"{recurring / count:.0%} of the {n}-word phrases occur more than once (more than {limit:.0%})."
    return None


# ---- the brief ---------------------------------------------------------------------------------------

_STOPWORDS = frozenset("""
a an the and or but nor of to in on at by for with from into onto about over under after before
is are was were be been being am do does did has have had having it its this that these those
who whom whose which what when where why how their them they he she him her his hers we us our
you your yours i me my mine some any very really just more most much many few own same so than
too not no yes who's that's someone somebody something person people one ones
""".split())
_STEM_CHARS = 5  # "frustrated" and "frustration" share a stem: a cheap match across word forms


# an emotion shows in words near it as often as in its own name ("frustrated": "fed up", "annoyed"):
# a value whose stem is in a family is present when any of the family's stems is
_EMOTION_FAMILIES = (
    ("frust", "annoy", "angry", "anger", "irrit", "furio", "fed up", "upset", "impat", "had it"),
    ("anxio", "anxie", "nervo", "worri", "worry", "stres", "scare", "afrai", "overw", "panic", "tense"),
    ("sad", "down", "disap", "disco", "lonel", "hopel", "unhap"),
    ("excit", "happy", "thril", "eager", "enthu", "optim", "hopef", "cheer", "looki"),
    ("confu", "lost", "unsur", "uncer", "puzzl", "baffl", "make sense", "not follo"),
    ("skept", "scept", "doubt", "suspi", "cynic", "wary", "not convi"),
    ("curio", "wonde", "inter", "intri", "quick quest"),
)


def content_words(value: str) -> list[str]:
    """The words of a persona, emotion or topic that carry meaning (no stopwords, at least three letters)."""
    return [w for w in _WORD.findall(value.lower()) if len(w) >= 3 and w not in _STOPWORDS]


def _shows(word: str, stems: set[str], text: str, families: tuple[tuple[str, ...], ...]) -> bool:
    stem = word[:_STEM_CHARS]
    if stem in stems:
        return True
    for family in families:
        if stem in family:
            return any((f in stems) if " " not in f else (f in text) for f in family)
    return False


def _present(name: str, value: Any, stems: set[str], text: str) -> str | None:
    words = content_words(str(value or ""))
    if not words:
        return None  # nothing to look for (empty, or only stopwords)
    families = _EMOTION_FAMILIES if name == "emotion" else ()
    missing = [w for w in words if not _shows(w, stems, text, families)]
    # most words must appear: "a retired teacher who loves gardening" is there without "loves"
    if len(missing) * 2 > len(words):
        shown = ", ".join(missing[:6])
        return (f"The {name} does not show: {shown} never appears." if len(missing) == 1 else
                f"The {name} does not show: {counted(len(missing), 'word')} of it never appear ({shown}).")
    return None


def _content(turn: Mapping[str, Any]) -> str:
    content = turn.get("content")
    return content if isinstance(content, str) else ""


def check_conversation(turns: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                       settings: Settings | None = None) -> list[CheckResult]:
    """Every check on `turns` ([{"role", "content"}]) asked for with `params` (persona, emotion, topic, turns)."""
    s = settings or get_settings()
    lowered = [_content(turn).lower() for turn in turns]
    words = [_WORD.findall(text) for text in lowered]
    text = " ".join(lowered)
    stems = {w[:_STEM_CHARS] for found in words for w in found}
    problems = {
        "roles_alternate": _roles_alternate(turns),
        "turn_count": _turn_count(turns, params.get("turns")),
        "no_placeholder": _no_placeholder(turns),
        "turn_length": _turn_length(turns, s),
        "no_meta_text": _no_meta_text(turns),
        "no_refusal": _no_refusal(turns),
        "no_repetition": _no_repetition(lowered, words, s),
        "persona_present": _present("persona", params.get("persona"), stems, text),
        "emotion_present": _present("emotion", params.get("emotion"), stems, text),
        "topic_present": _present("topic", params.get("topic"), stems, text),
    }
    return [_result(name, problems[name]) for name in CHECK_NAMES]
