"""The dataset card: a Markdown page beside an export that says what is in it and how it was chosen.

Counts come from the rows as they are written (`CardStats.add`, in the export's one pass), so
the card describes exactly the file beside it; the decisions and the duplicates the filter left
out are counted by the store for the same filter. Every text that came from a person or a model
(templates, personas, models, names, the filter) is redacted, then cut, then escaped with
core.markdown_text.one_line, so the card renders as text in any Markdown viewer: no image loads,
no link or HTML forms, and no secret a persona carried is repeated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.config import get_settings
from core.markdown_text import one_line
from core.redact import redact_text

__all__ = ["NOT_SCORED", "SCORE_BINS", "CardFacts", "CardStats", "render_card", "score_bin"]

NOT_SCORED = "not scored"
_BIN = 10  # points per score bin; the last bin holds 90-100
_TEXT_MAX = 200  # characters of one cell's text (a persona can be long)


def score_bin(score: int | None) -> str:
    """The histogram bin of a 0-100 score: '0-9', ..., '80-89', '90-100'; NOT_SCORED for none."""
    if score is None:
        return NOT_SCORED
    low = min(max(int(score), 0) // _BIN, 9) * _BIN
    return f"{low}-{low + _BIN - 1 if low < 90 else 100}"


SCORE_BINS = tuple(score_bin(s) for s in range(0, 100, _BIN))


@dataclass
class CardStats:
    """What the rows written so far hold, by side of the split ('all' without one)."""

    rows: Counter[str] = field(default_factory=Counter)
    templates: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    params: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    scores: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    duplicates_kept: int = 0
    tokens: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def add(self, row: Mapping[str, Any], side: str) -> None:
        params = row["params"] or {}
        version = params.get("template_version")
        self.rows[side] += 1
        self.templates[(row["template"], int(version) if version is not None else None)] += 1
        self.models[row["model"]] += 1
        self.params[(str(params.get("persona", "")), str(params.get("emotion", "")),
                     str(params.get("topic", "")))] += 1
        self.scores[score_bin(row["quality_score"])] += 1
        self.statuses[row["review_status"]] += 1
        self.duplicates_kept += 1 if row["duplicate_of"] else 0
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens"):
            self.tokens[name] += int(row[name] or 0)
        self.cost_usd += float(row["cost_usd"] or 0.0)
        self.judge_cost_usd += float(row["judge_cost_usd"] or 0.0)


@dataclass(frozen=True)
class CardFacts:
    """What the card says beyond the rows: the export itself, and what the store counted for its filter."""

    title: str
    made_at: datetime
    made_by: str
    via: str
    format_label: str
    files: Sequence[str]
    filter: Mapping[str, Any]
    complete: bool = True
    duplicates_left_out: int = 0
    decisions: Sequence[tuple[str, str, int]] = ()  # (reviewer, decision, count)


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], total: int | None = None) -> list[str]:
    """A GFM table, text cells escaped, cut to dataset_card_max_rows with a line saying how much is left out."""
    limit = get_settings().dataset_card_max_rows
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shown = 0
    rest_rows = rest_count = 0
    for row in rows:
        if shown < limit:
            out.append("| " + " | ".join(_cell(v) for v in row) + " |")
            shown += 1
        else:
            rest_rows += 1
            rest_count += int(row[-1]) if isinstance(row[-1], int) else 0
    if rest_rows:
        out.append("")
        out.append(f"…and {rest_rows:,} more rows ({rest_count:,} conversations), left out to keep the card short.")
    if total is not None:
        out.append("")
        out.append(f"Total: {total:,}.")
    return out


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return _text(value) if value not in (None, "") else "—"


def _text(value: Any, max_chars: int | None = _TEXT_MAX) -> str:
    """Untrusted text for one line of the card: redacted first, then cut and escaped."""
    return one_line(redact_text(str(value)), max_chars)


def _by_count(counter: Mapping[Any, int]) -> list[tuple[Any, int]]:
    """Most first, then by key (as text), so the card is the same for the same rows."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))


def render_card(stats: CardStats, facts: CardFacts) -> str:
    """The card as Markdown."""
    lines = [f"# {_text(facts.title)}", "",
             f"Exported {facts.made_at:%Y-%m-%d %H:%M:%S} UTC by {_text(facts.made_by)} "
             f"(via {_text(facts.via)}) as {_text(facts.format_label)}.", ""]
    if not facts.complete:
        lines += [f"This export was cut at the download limit: it holds the first {stats.total:,} matching "
                  "conversations (oldest first), and this card describes those.", ""]
    lines += ["## Files", "", *(f"- {_text(name, None)}" for name in facts.files), ""]
    lines += ["## Filter", "", *_table(("field", "value"), sorted((k, str(v)) for k, v in facts.filter.items())), ""]
    lines += ["## Counts", "", *_table(("part", "conversations"), sorted(stats.rows.items()), stats.total), ""]
    lines += ["## Templates and versions", "",
              *_table(("template", "version", "conversations"),
                      [(t, v if v is not None else "—", n) for (t, v), n in _by_count(stats.templates)]), ""]
    lines += ["## Models", "", *_table(("model", "conversations"), _by_count(stats.models)), ""]
    lines += ["## Parameters (persona × emotion × topic)", "",
              *_table(("persona", "emotion", "topic", "conversations"),
                      [(p, e, t, n) for (p, e, t), n in _by_count(stats.params)]), ""]
    bins = [(b, stats.scores[b]) for b in SCORE_BINS] + ([(NOT_SCORED, stats.scores[NOT_SCORED])]
                                                          if stats.scores[NOT_SCORED] else [])
    lines += ["## Quality score", "", *_table(("score", "conversations"), bins), ""]
    lines += ["## Review", "", *_table(("status", "conversations"), _by_count(stats.statuses)), ""]
    if facts.decisions:
        lines += ["Decisions on these conversations:", "",
                  *_table(("reviewer", "decision", "decisions"), facts.decisions), ""]
    else:
        lines += ["No review decisions on these conversations.", ""]
    lines += ["## Duplicates", "",
              *_table(("duplicates", "conversations"), [
                  ("flagged duplicates the filter left out (removed)", facts.duplicates_left_out),
                  ("flagged duplicates in this export (on one side of the split with what they duplicate)",
                   stats.duplicates_kept)]), ""]
    t = stats.tokens
    lines += ["## Tokens and cost", "",
              *_table(("measure", "total"), [
                  ("input tokens", t["input_tokens"]), ("output tokens", t["output_tokens"]),
                  ("cache read tokens", t["cache_read_tokens"]), ("cache write tokens", t["cache_creation_tokens"]),
                  ("generation cost (USD)", round(stats.cost_usd, 6)),
                  ("judge cost (USD)", round(stats.judge_cost_usd, 6))]), ""]
    return "\n".join(lines)
