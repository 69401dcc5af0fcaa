"""Health numbers and the card's escape, without a store: distinct-n, score bins, charts, one-line Markdown."""

from __future__ import annotations

import re
import string

import numpy as np

from core.datasets import NOT_SCORED, DatasetHealth, distinct_n, score_bin
from core.datasets.health import _Distinct, _mix
from core.markdown_text import one_line
from core.ui.health_charts import scores_spec, states_spec


def test_distinct_n_counts_distinct_word_ngrams_over_all_of_them():
    """'the cat sat' + 'the cat ran': 4 distinct of 6 words, 3 distinct of 4 pairs; case and punctuation aside."""
    texts = ["The cat sat.", "the CAT, ran"]
    assert distinct_n(texts, 1) == 4 / 6
    assert distinct_n(texts, 2) == 3 / 4
    assert distinct_n([], 1) is None and distinct_n(["one"], 2) is None


def test_past_the_sketch_size_distinct_n_is_estimated_closely():
    """Keeping only the k smallest hashes, about 50,000 distinct of 200,000 n-grams is estimated within 3 % (k = 20,000: about 0.7 % is one standard error)."""
    rnd = np.random.default_rng(3)
    values = _mix(rnd.integers(0, 50_000, size=200_000, dtype=np.uint64))
    truth = len(np.unique(values))
    exact, sketched = _Distinct(k=1 << 40), _Distinct(k=20_000)
    for chunk in np.array_split(values, 40):
        exact.add(chunk)
        sketched.add(chunk)
    assert exact.exact and exact.distinct() == truth
    assert not sketched.exact and abs(sketched.distinct() - truth) < 0.03 * truth
    assert len(sketched.kept) == 20_000


def test_scores_fall_in_ten_point_bins_with_100_in_the_last():
    """0-9 ... 90-100; no score is its own bin."""
    assert [score_bin(s) for s in (0, 9, 10, 89, 90, 100)] == ["0-9", "0-9", "10-19", "80-89", "90-100", "90-100"]
    assert score_bin(None) == NOT_SCORED


def test_the_charts_carry_the_counts_and_leave_out_an_empty_not_scored_bar():
    """The states chart has a bar per state; the score chart a bar per bin, 'not scored' only when there are some."""
    health = DatasetHealth(total=3, states={"accepted": 2, "needs_review": 1, "rejected": 0, "regenerate": 0},
                           scores={"0-9": 0, "90-100": 3, NOT_SCORED: 0})
    assert [v["n"] for v in states_spec(health)["data"]["values"]] == [2, 1, 0, 0]
    assert [v["bin"] for v in scores_spec(health)["data"]["values"]] == ["0-9", "90-100"]


def test_one_line_markdown_is_text_in_a_table_cell():
    """Every punctuation character escaped, line breaks made spaces, links broken: a cell shows exactly the text."""
    text = "<img src=x onerror=alert(1)>\n**bold** | [a](http://x.invalid) a@b.invalid"
    cell = one_line(text)
    assert "\n" not in cell
    assert not re.search(r"(?<!\\)[" + re.escape(string.punctuation.replace("\\", "")) + "]", cell)
    assert re.sub(r"\\(.)", r"\1", cell).replace("\u2060", "") == " ".join(text.split())
