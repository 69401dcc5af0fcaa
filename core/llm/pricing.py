"""Claude models and their list prices: the one table every cost figure comes from.

The table is data, ``prices.toml`` beside this module (its header says what each field
means and where the figures come from); this module reads it once, at import, and prices
a call's usage: `price()` gives the cost by kind (input, output, cache read, cache write)
for a mode, online or Message Batches (every token at the batch share, 50 %), with cache
writes at the 5-minute or 1-hour price. tests/unit/test_pricing.py checks the file against
the installed SDK.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from core.config import default

__all__ = [
    "CACHE_TTLS",
    "DEFAULT_MODEL",
    "MODES",
    "MODELS",
    "PRICES_CHECKED",
    "Cost",
    "ModelInfo",
    "cost_usd",
    "get_model",
    "model_choices",
    "parse_prices",
    "price",
    "priced_cost",
]

DEFAULT_MODEL: str = default("default_model")  # declared once, in core.config

PUBLISHED = "published"
FAMILY_ESTIMATE = "family estimate"

PRICE_FILE = "prices.toml"

# how a call reaches the model: the Messages API one request at a time, or a Message Batch
MODES = ("online", "message_batches")
# how long a cache write lives: the price of a write depends on it
CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True)
class ModelInfo:
    """One priced model: prices per million tokens, lifecycle and where the price came from."""

    name: str
    label: str
    family: str
    input_per_mtok: float
    output_per_mtok: float
    cache_write_per_mtok: float  # the 5-minute cache
    cache_read_per_mtok: float
    end_of_life: date | None
    price_source: str
    note: str = ""
    cache_min_tokens: int = 1024  # the shortest prompt prefix the model caches
    cache_write_1h_per_mtok: float = 0.0  # the 1-hour cache
    batch_share: float = 0.5  # the share of every price a Message Batch pays

    @property
    def deprecated(self) -> bool:
        return self.end_of_life is not None

    @property
    def is_estimate(self) -> bool:
        return self.price_source == FAMILY_ESTIMATE


# prices.toml key -> ModelInfo field, for the prices every row gives
_PRICE_KEYS = {"input": "input_per_mtok", "output": "output_per_mtok"}
# the cache prices, which a row may give and otherwise takes as its input price times a multiplier
_CACHE_KEYS = {"cache_write": "cache_write_per_mtok", "cache_write_1h": "cache_write_1h_per_mtok",
               "cache_read": "cache_read_per_mtok"}
# [multipliers] key -> the cache price it derives (of the input price), or the batch share
_MULTIPLIER_KEYS = {"cache_write_5m": "cache_write", "cache_write_1h": "cache_write_1h", "cache_read": "cache_read",
                    "batch": "batch"}
_TEXT_KEYS = ("label", "family")
_OPTIONAL_KEYS = ("source", "end_of_life", "note", "cache_min_tokens", "batch", *_CACHE_KEYS)
# the shortest cacheable prefix of a family, where a row does not say its own
_CACHE_MIN_TOKENS = {"haiku": 2048}
_CACHE_MIN_DEFAULT = 1024


def _model(name: str, row: dict[str, Any], multipliers: dict[str, float]) -> ModelInfo:
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
    prices |= {field: row[key] for key, field in _CACHE_KEYS.items() if key in row}
    # bool is an int to Python, and a price of `true` is a typo, not a dollar
    if not all(_is_number(v) for v in prices.values()):
        raise refuse("every price is a number")
    for key, field in _CACHE_KEYS.items():
        prices.setdefault(field, row["input"] * multipliers[key])
    batch = row.get("batch", multipliers["batch"])
    if not _is_number(batch) or not 0 < batch <= 1:
        raise refuse("batch is the share of the price a Message Batch pays, above 0 and at most 1")
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
                     end_of_life=end_of_life, price_source=source, note=note, cache_min_tokens=cache_min,
                     batch_share=float(batch))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _multipliers(data: dict[str, Any]) -> dict[str, float]:
    """The [multipliers] table, keyed by the row key each one derives."""
    table = data.get("multipliers")
    if not isinstance(table, dict) or set(table) != set(_MULTIPLIER_KEYS):
        raise ValueError(f"{PRICE_FILE}: [multipliers] gives exactly {sorted(_MULTIPLIER_KEYS)}")
    if not all(_is_number(v) and v > 0 for v in table.values()):
        raise ValueError(f"{PRICE_FILE}: every multiplier is a number above 0")
    return {row_key: float(table[key]) for key, row_key in _MULTIPLIER_KEYS.items()}


def parse_prices(text: str) -> tuple[date, dict[str, ModelInfo]]:
    """The date the table was checked and its rows, from the text of a prices.toml."""
    data = tomllib.loads(text)
    checked, models = data.get("checked"), data.get("models")
    if type(checked) is not date:
        raise ValueError(f"{PRICE_FILE}: 'checked' is the date the prices were checked (YYYY-MM-DD)")
    if not isinstance(models, dict) or not models:
        raise ValueError(f"{PRICE_FILE}: no [models.<name>] tables")
    multipliers = _multipliers(data)
    return checked, {name: _model(name, row, multipliers) for name, row in models.items()}


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


def _one_hour_writes(usage: Any, ttl: str) -> int:
    """The cache writes of `usage` that went to the 1-hour cache: as the usage splits them, else by `ttl`."""
    written = _tokens(usage, "cache_creation_input_tokens")
    if _tokens(usage, "cache_creation_1h_input_tokens"):  # core.llm.types.Usage
        return min(written, _tokens(usage, "cache_creation_1h_input_tokens"))
    split = usage.get("cache_creation") if isinstance(usage, dict) else getattr(usage, "cache_creation", None)
    if split is not None:  # the API's breakdown
        return min(written, _tokens(split, "ephemeral_1h_input_tokens"))
    return written if ttl == "1h" else 0


@dataclass(frozen=True)
class Cost:
    """Dollars of one usage by kind of token, at the prices of its model and mode."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    known: bool = True  # False: the model is not in the table and was priced as the default

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_read + self.cache_write

    def by_kind(self) -> dict[str, float]:
        return {"input": self.input, "output": self.output, "cache_read": self.cache_read,
                "cache_write": self.cache_write, "total": self.total}


def price(model: str | None, usage: Any, *, mode: str = "online", ttl: str = "5m") -> Cost:
    """What `usage` costs on `model` in `mode` (online | message_batches), by kind.

    `usage` is an object or dict with the SDK's token field names (input_tokens, output_tokens,
    cache_read_input_tokens, cache_creation_input_tokens); cache writes are priced at the
    1-hour rate as far as the usage says so (its `cache_creation` breakdown, or
    `cache_creation_1h_input_tokens` of core.llm.types.Usage) and otherwise at `ttl`'s.
    Unknown models are priced as the default model, and the Cost says so.
    """
    if mode not in MODES:
        raise ValueError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
    if ttl not in CACHE_TTLS:
        raise ValueError(f"ttl is one of {', '.join(CACHE_TTLS)}, not {ttl!r}")
    info, known = get_model(model)
    share = (info.batch_share if mode == "message_batches" else 1.0) / 1_000_000
    hour = _one_hour_writes(usage, ttl)
    return Cost(
        input=_tokens(usage, "input_tokens") * info.input_per_mtok * share,
        output=_tokens(usage, "output_tokens") * info.output_per_mtok * share,
        cache_read=_tokens(usage, "cache_read_input_tokens") * info.cache_read_per_mtok * share,
        cache_write=((_tokens(usage, "cache_creation_input_tokens") - hour) * info.cache_write_per_mtok
                     + hour * info.cache_write_1h_per_mtok) * share,
        known=known,
    )


def priced_cost(model: str | None, usage: Any, *, mode: str = "online") -> tuple[float, bool]:
    """(dollar cost, whether the model was in the table); unknown models use the default's price."""
    cost = price(model, usage, mode=mode)
    return cost.total, cost.known


def cost_usd(model: str | None, usage: Any, *, mode: str = "online") -> float:
    """Dollar cost of one call's usage (an object or dict with the SDK's token field names)."""
    return price(model, usage, mode=mode).total
