"""The price table: the data file parses, every SDK model priced, the default current, costs from usage."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import typing
from datetime import date
from pathlib import Path

import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types import ModelParam

from core.config import get_settings
from core.llm.pricing import (
    DEFAULT_MODEL,
    FAMILY_ESTIMATE,
    MODELS,
    PRICE_FILE,
    PRICES_CHECKED,
    cost_usd,
    model_choices,
    parse_prices,
    priced_cost,
)

ROOT = Path(__file__).resolve().parents[2]

# the models this app offers today; a table that lost one of them is a broken edit
CURRENT_MODELS = ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2", "claude-opus-4-8"]

ROW = '''
checked = 2026-11-29

[models.claude-test-1]
label = "Claude Test 1"
family = "sonnet"
input = 2.0
output = 10.0
cache_write = 2.5
cache_read = 0.2
'''


def _sdk_models() -> set[str]:
    names: set[str] = set()
    for arg in typing.get_args(ModelParam):
        names.update(a for a in typing.get_args(arg) if isinstance(a, str))
    return names


def test_every_model_the_sdk_lists_has_a_price_row():
    """Each model literal of the installed SDK's ModelParam is a row of the price file."""
    missing = _sdk_models() - set(MODELS)
    assert not missing, f"add to {PRICE_FILE}: {sorted(missing)}"


def test_every_row_has_positive_prices_with_cache_reads_cheapest():
    """Every price is positive, output costs at least input, and cache read < input < cache write."""
    for info in MODELS.values():
        assert info.input_per_mtok > 0 and info.output_per_mtok >= info.input_per_mtok
        assert info.cache_read_per_mtok < info.input_per_mtok < info.cache_write_per_mtok


def test_deprecated_flags_and_end_of_life_follow_the_sdk():
    """A model is deprecated exactly when the SDK's DEPRECATED_MODELS lists it, with a parsed date."""
    for name, info in MODELS.items():
        assert info.deprecated == (name in DEPRECATED_MODELS)
        if info.deprecated:
            assert isinstance(info.end_of_life, date)
    # the SDK's list changes with each release: check the parse on whatever it lists now
    listed = [name for name in MODELS if name in DEPRECATED_MODELS]
    assert listed
    for name in listed:
        eol, text = MODELS[name].end_of_life, DEPRECATED_MODELS[name]
        assert eol.strftime("%B") in text and str(eol.year) in text and text.split()[1].startswith(str(eol.day))


def test_the_current_models_are_in_the_table_and_not_deprecated():
    """The models the app offers today are rows of the price file, none deprecated, with labels."""
    for name in CURRENT_MODELS:
        assert name in MODELS and not MODELS[name].deprecated and MODELS[name].label.startswith("Claude")


def test_the_table_says_when_it_was_checked():
    """The file carries the date its prices were checked, not later than today."""
    assert isinstance(PRICES_CHECKED, date) and date(2026, 1, 1) <= PRICES_CHECKED <= date.today()


def test_a_malformed_row_is_refused_with_its_model_name():
    """A row missing a price, with a price that is not a number, or an unknown key is a ValueError naming it."""
    assert list(parse_prices(ROW)[1]) == ["claude-test-1"]
    for broken in (ROW.replace("input = 2.0\n", ""), ROW.replace("input = 2.0", "input = true"),
                   ROW.replace("input = 2.0", 'input = "2.0"'), ROW + 'price = 1.0\n',
                   ROW + 'end_of_life = "June 30th, 2026"\n', ROW + 'source = "guess"\n'):
        with pytest.raises(ValueError, match="claude-test-1"):
            parse_prices(broken)
    with pytest.raises(ValueError, match="checked"):
        parse_prices(ROW.replace("checked = 2026-11-29", ""))


def test_the_price_file_is_packaged_and_read_without_the_sdk():
    """pyproject ships prices.toml with core.llm, and importing the table does not import anthropic."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert PRICE_FILE in pyproject["tool"]["setuptools"]["package-data"]["core.llm"]
    code = "import sys, core.llm.pricing as p; assert p.MODELS; print('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_default_model_is_current_in_the_sdk_and_the_settings():
    """The default model is in ModelParam, is not deprecated, and Settings.default_model agrees."""
    assert DEFAULT_MODEL in _sdk_models()
    assert not MODELS[DEFAULT_MODEL].deprecated
    assert get_settings().default_model == DEFAULT_MODEL
    assert model_choices()[0] == DEFAULT_MODEL
    assert not any(MODELS[n].deprecated for n in model_choices())


def test_cost_adds_the_four_token_kinds_at_their_prices():
    """A million of each token kind costs the sum of the four list prices of the model."""
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000,
             "cache_creation_input_tokens": 1_000_000, "cache_read_input_tokens": 1_000_000}
    assert cost_usd("claude-sonnet-5-5", usage) == pytest.approx(2.0 + 10.0 + 2.5 + 0.2)
    assert cost_usd("claude-opus-4-8", {"input_tokens": 1000, "output_tokens": 200}) == pytest.approx(0.01)


def test_cost_reads_usage_objects_and_missing_cache_fields():
    """A usage object without cache counts (None) is priced on input and output alone."""

    class SdkUsage:
        input_tokens = 500_000
        output_tokens = 100_000
        cache_creation_input_tokens = None
        cache_read_input_tokens = None

    assert cost_usd("claude-haiku-4-5", SdkUsage()) == pytest.approx(0.5 + 0.5)


def test_an_unknown_model_is_priced_as_the_default_and_flagged():
    """An unknown model name costs what the default model costs, and the flag says it was unknown."""
    usage = {"input_tokens": 1234, "output_tokens": 567}
    cost, known = priced_cost("claude-imaginary-9", usage)
    assert not known
    assert cost == pytest.approx(cost_usd(DEFAULT_MODEL, usage))
    assert priced_cost(DEFAULT_MODEL, usage)[1]


def test_estimated_rows_say_so():
    """Models without a published price of their own are marked as family estimates."""
    estimates = {n for n, m in MODELS.items() if m.price_source == FAMILY_ESTIMATE}
    assert "claude-mythos-preview" in estimates
    assert DEFAULT_MODEL not in estimates
    assert all(MODELS[n].is_estimate for n in estimates)
