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
    MODES,
    PRICE_FILE,
    PRICES_CHECKED,
    cost_usd,
    model_choices,
    parse_prices,
    price,
    priced_cost,
)

ROOT = Path(__file__).resolve().parents[2]

# the models this app offers today; a table that lost one of them is a broken edit
CURRENT_MODELS = ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2", "claude-opus-4-8"]

ROW = '''
checked = 2026-11-29

[multipliers]
batch = 0.5
cache_read = 0.1
cache_write_5m = 1.25
cache_write_1h = 2.0

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


USAGE = {"input_tokens": 123_456, "output_tokens": 54_321, "cache_read_input_tokens": 400_000,
         "cache_creation_input_tokens": 20_000}
BARE = ROW.replace("cache_write = 2.5\ncache_read = 0.2\n", "")


def test_a_message_batch_costs_half_of_the_same_usage_online_for_every_model():
    """Each kind of token, and so the total, costs 50 % in message_batches mode of what it costs online."""
    for name in MODELS:
        online, batch = price(name, USAGE), price(name, USAGE, mode="message_batches")
        for kind, dollars in online.by_kind().items():
            assert batch.by_kind()[kind] == pytest.approx(dollars * 0.5), (name, kind)
        assert batch.total > 0


def test_cache_prices_a_row_leaves_out_are_its_input_price_times_the_multipliers():
    """Without its own cache prices a row reads at 0.1x input and writes at 1.25x (5 minutes) or 2x (1 hour)."""
    info = parse_prices(BARE)[1]["claude-test-1"]
    assert (info.cache_read_per_mtok, info.cache_write_per_mtok, info.cache_write_1h_per_mtok) == \
        pytest.approx((0.2, 2.5, 4.0))
    assert info.batch_share == 0.5
    assert parse_prices(BARE.replace("family =", "batch = 0.4\nfamily ="))[1]["claude-test-1"].batch_share == 0.4


def test_the_default_model_reads_at_a_tenth_and_writes_at_its_multipliers():
    """A million read tokens cost 0.1x the input price; a million written 1.25x for 5 minutes, 2x for an hour."""
    info = MODELS[DEFAULT_MODEL]
    read = price(DEFAULT_MODEL, {"cache_read_input_tokens": 1_000_000})
    five = price(DEFAULT_MODEL, {"cache_creation_input_tokens": 1_000_000})
    hour = price(DEFAULT_MODEL, {"cache_creation_input_tokens": 1_000_000}, ttl="1h")
    assert read.cache_read == pytest.approx(0.1 * info.input_per_mtok) and read.total == read.cache_read
    assert five.cache_write == pytest.approx(1.25 * info.input_per_mtok)
    assert hour.cache_write == pytest.approx(2.0 * info.input_per_mtok)
    batch_hour = price(DEFAULT_MODEL, {"cache_creation_input_tokens": 1_000_000}, ttl="1h", mode="message_batches")
    assert batch_hour.cache_write == pytest.approx(1.0 * info.input_per_mtok)


def test_the_usage_breakdown_says_which_writes_were_for_an_hour():
    """The API's cache_creation split, or Usage.cache_creation_1h_input_tokens, prices each part at its own rate."""
    from core.llm.types import Usage

    info = MODELS[DEFAULT_MODEL]
    api = {"cache_creation_input_tokens": 3_000_000,
           "cache_creation": {"ephemeral_5m_input_tokens": 2_000_000, "ephemeral_1h_input_tokens": 1_000_000}}
    expected = (2 * 1.25 + 1 * 2.0) * info.input_per_mtok
    assert price(DEFAULT_MODEL, api).cache_write == pytest.approx(expected)
    usage = Usage.from_api(api)
    assert usage.cache_creation_1h_input_tokens == 1_000_000
    assert price(DEFAULT_MODEL, usage).cache_write == pytest.approx(expected)
    assert (usage + usage).cache_creation_1h_input_tokens == 2_000_000


def test_cost_by_kind_adds_up_and_a_bad_mode_or_ttl_is_refused():
    """input + output + cache read + cache write is the total; a mode or ttl outside the lists is a ValueError."""
    cost = price("claude-opus-4-8", USAGE)
    parts = cost.by_kind()
    assert parts["total"] == pytest.approx(sum(v for k, v in parts.items() if k != "total"))
    assert cost_usd("claude-opus-4-8", USAGE, mode="message_batches") == pytest.approx(cost.total / 2)
    assert MODES == ("online", "message_batches")
    with pytest.raises(ValueError, match="mode"):
        price(DEFAULT_MODEL, USAGE, mode="batch")
    with pytest.raises(ValueError, match="ttl"):
        price(DEFAULT_MODEL, USAGE, ttl="24h")


def test_a_price_file_without_its_multipliers_is_refused():
    """[multipliers] must give batch, cache_read, cache_write_5m and cache_write_1h, each above 0."""
    for broken in (ROW.replace("batch = 0.5\n", ""), ROW.replace("batch = 0.5", "batch = 0"),
                   ROW.replace("cache_read = 0.1", "cache_read = true")):
        with pytest.raises(ValueError, match="multiplier"):
            parse_prices(broken)
    with pytest.raises(ValueError, match="batch"):
        parse_prices(ROW.replace("family =", "batch = 1.5\nfamily ="))


def test_a_batchs_cost_by_kind_adds_up_and_message_batches_halves_every_kind():
    """Input, output, cache reads and writes of a batch's totals: online sums to the price; batch mode is half of it."""
    from core.batches.service import cost_by_kind

    totals = {"model": "claude-sonnet-5-5", "input_tokens": 100_000, "output_tokens": 20_000,
              "cache_read_tokens": 50_000, "cache_creation_tokens": 0, "judge_cost_usd": 0.0}
    online = cost_by_kind({**totals, "mode": "online"})
    batched = cost_by_kind({**totals, "mode": "message_batches"})
    assert [k["kind"] for k in online] == ["input", "output", "cache reads", "cache writes"]
    usage = {"input_tokens": 100_000, "output_tokens": 20_000, "cache_read_input_tokens": 50_000}
    assert sum(k["cost_usd"] for k in online) == pytest.approx(price("claude-sonnet-5-5", usage).total)
    for a, b in zip(online, batched, strict=True):
        assert b["cost_usd"] == pytest.approx(a["cost_usd"] / 2)
    judged = cost_by_kind({**totals, "mode": "online", "judge_cost_usd": 0.25})
    assert judged[-1] == {"kind": "judge", "tokens": None, "cost_usd": 0.25}
