"""Claude models and their list prices: the one table every cost figure comes from.

The table is data, ``prices.toml`` beside this module (its header says what each field
means and where the figures come from); this module reads it once, at import, and prices
a call's usage. tests/unit/test_pricing.py checks the file against the installed SDK.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from core.config import default

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "PRICES_CHECKED",
    "ModelInfo",
    "cost_usd",
    "get_model",
    "model_choices",
    "parse_prices",
    "priced_cost",
]

DEFAULT_MODEL: str = default("default_model")  # declared once, in core.config

PUBLISHED = "published"
FAMILY_ESTIMATE = "family estimate"

PRICE_FILE = "prices.toml"


@dataclass(frozen=True)
class ModelInfo:
    """One priced model: prices per million tokens, lifecycle and where the price came from."""

    name: str
    label: str
    family: str
    input_per_mtok: float
    output_per_mtok: float
    cache_write_per_mtok: float
    cache_read_per_mtok: float
    end_of_life: date | None
    price_source: str
    note: str = ""
    cache_min_tokens: int = 1024  # the shortest prompt prefix the model caches


    @property
    def deprecated(self) -> bool:
        return self.end_of_life is not None

    @property
    def is_estimate(self) -> bool:
        return self.price_source == FAMILY_ESTIMATE


# prices.toml key -> ModelInfo field, for the four prices
_PRICE_KEYS = {"input": "input_per_mtok", "output": "output_per_mtok",
               "cache_write": "cache_write_per_mtok", "cache_read": "cache_read_per_mtok"}
_TEXT_KEYS = ("label", "family")
_OPTIONAL_KEYS = ("source", "end_of_life", "note", "cache_min_tokens")
# the shortest cacheable prefix of a family, where a row does not say its own
_CACHE_MIN_TOKENS = {"haiku": 2048}
_CACHE_MIN_DEFAULT = 1024


def _model(name: str, row: dict[str, Any]) -> ModelInfo:
    """One ``[models.<name>]`` table as a ModelInfo; ValueError names the row and what is wrong."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"{PRICE_FILE}: model {name!r}: {why}")

    unknown = set(row) - {*_PRICE_KEYS, *_TEXT_KEYS, *_OPTIONAL_KEYS}
    if unknown:
        raise refuse(f"unknown keys {sorted(unknown)}")
    for key in (*_PRICE_KEYS, *_TEXT_KEYS):
        if key not in row:
            raise refuse(f"no {key!r}")
    prices = {field: row[key] for key, field in _PRICE_KEYS.items()}
    # bool is an int to Python, and a price of `true` is a typo, not a dollar
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in prices.values()):
        raise refuse("every price is a number")
    if not all(isinstance(row[key], str) and row[key] for key in _TEXT_KEYS):
        raise refuse("label and family are non-empty text")
    source = row.get("source", PUBLISHED)
    if source not in (PUBLISHED, FAMILY_ESTIMATE):
        raise refuse(f"source is {PUBLISHED!r} or {FAMILY_ESTIMATE!r}, not {source!r}")
    end_of_life = row.get("end_of_life")
    if end_of_life is not None and type(end_of_life) is not date:  # a datetime is a date too
        raise refuse("end_of_life is a date (YYYY-MM-DD)")
    note = row.get("note", "")
    if not isinstance(note, str):
        raise refuse("note is text")
    cache_min = row.get("cache_min_tokens", _CACHE_MIN_TOKENS.get(row["family"], _CACHE_MIN_DEFAULT))
    if isinstance(cache_min, bool) or not isinstance(cache_min, int) or cache_min < 1:
        raise refuse("cache_min_tokens is a whole number above 0")
    return ModelInfo(name=name, label=row["label"], family=row["family"],
                     **{field: float(v) for field, v in prices.items()},
                     end_of_life=end_of_life, price_source=source, note=note, cache_min_tokens=cache_min)


def parse_prices(text: str) -> tuple[date, dict[str, ModelInfo]]:
    """The date the table was checked and its rows, from the text of a prices.toml."""
    data = tomllib.loads(text)
    checked, models = data.get("checked"), data.get("models")
    if type(checked) is not date:
        raise ValueError(f"{PRICE_FILE}: 'checked' is the date the prices were checked (YYYY-MM-DD)")
    if not isinstance(models, dict) or not models:
        raise ValueError(f"{PRICE_FILE}: no [models.<name>] tables")
    return checked, {name: _model(name, row) for name, row in models.items()}


PRICES_CHECKED, MODELS = parse_prices(resources.files(__package__).joinpath(PRICE_FILE).read_text("utf-8"))


def get_model(name: str | None) -> tuple[ModelInfo, bool]:
    """The row for `name`, and whether it was found (unknown names fall back to the default)."""
    if name and name in MODELS:
        return MODELS[name], True
    return MODELS[DEFAULT_MODEL], False


def model_choices(*, include_deprecated: bool = False) -> list[str]:
    """Model names for a picker, default first, deprecated ones only on request."""
    names = [n for n, m in MODELS.items() if include_deprecated or not m.deprecated]
    names.sort(key=lambda n: (n != DEFAULT_MODEL, MODELS[n].deprecated))
    return names


def _tokens(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return int(value or 0)


def priced_cost(model: str | None, usage: Any) -> tuple[float, bool]:
    """(dollar cost, whether the model was in the table); unknown models use the default's price."""
    info, known = get_model(model)
    total = (
        _tokens(usage, "input_tokens") * info.input_per_mtok
        + _tokens(usage, "output_tokens") * info.output_per_mtok
        + _tokens(usage, "cache_creation_input_tokens") * info.cache_write_per_mtok
        + _tokens(usage, "cache_read_input_tokens") * info.cache_read_per_mtok
    ) / 1_000_000
    return total, known


def cost_usd(model: str | None, usage: Any) -> float:
    """Dollar cost of one call's usage (an object or dict with the SDK's token field names)."""
    return priced_cost(model, usage)[0]
