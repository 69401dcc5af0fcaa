"""Claude models and their list prices: the one table every cost figure comes from.

Prices are US dollars per million tokens (MTok): input, output, 5-minute cache write
and cache read. Rows marked ``price_source="family estimate"`` are models whose own
price is not published where we could find it; they carry the price of their family
tier (haiku / sonnet / opus / fable / mythos) so the UI can say the figure is an estimate.

The set of names is exactly the models the installed ``anthropic`` SDK lists in
``anthropic.types.ModelParam``; the deprecated flag and end-of-life date come from the
SDK's own ``DEPRECATED_MODELS`` so they change when the SDK is upgraded.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from anthropic._data import DEPRECATED_MODELS
from anthropic.types import ModelParam

from core.config import default

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelInfo",
    "SDK_MODEL_NAMES",
    "cost_usd",
    "get_model",
    "model_choices",
    "priced_cost",
]

DEFAULT_MODEL: str = default("default_model")  # declared once, in core.config

PUBLISHED = "published"
FAMILY_ESTIMATE = "family estimate"


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
    deprecated: bool
    end_of_life: date | None
    price_source: str
    note: str = ""

    @property
    def is_estimate(self) -> bool:
        return self.price_source == FAMILY_ESTIMATE


# (input, output, 5m cache write, cache read) per MTok, from Anthropic's pricing and
# model overview pages. A family's entry is the price its estimated rows borrow.
_FAMILY_PRICE: dict[str, tuple[float, float, float, float]] = {
    "haiku": (1.0, 5.0, 1.25, 0.10),
    "sonnet": (2.0, 10.0, 2.50, 0.20),
    "opus": (5.0, 25.0, 6.25, 0.50),
    "fable": (10.0, 50.0, 12.50, 1.00),
    "mythos": (10.0, 50.0, 12.50, 1.00),
}

# rows whose figures are an estimate from their family (Mythos releases have always
# been priced like the Fable release of the same number)
_ESTIMATED = {"claude-mythos-5-2"}

# name -> (label, prices or None for the family tier's price, note)
_PRICES: dict[str, tuple[str, tuple[float, float, float, float] | None, str]] = {
    "claude-fable-5-2": ("Claude Fable 5.2", (8.0, 40.0, 10.0, 0.20), ""),
    "claude-mythos-5-2": ("Claude Mythos 5.2", (8.0, 40.0, 10.0, 0.20),
                          "Limited availability; priced like its twin Fable 5.2, as every Mythos release so far."),
    "claude-haiku-5-5": ("Claude Haiku 5.5", (0.10, 0.50, 0.125, 0.01),
                         "Prompts over 100,000 tokens cost five times more; this row is the lower tier."),
    "claude-sonnet-5-5": ("Claude Sonnet 5.5", (2.0, 10.0, 2.50, 0.20), ""),
    "claude-fable-5-1": ("Claude Fable 5.1", (10.0, 50.0, 12.50, 0.25), ""),
    "claude-opus-5-5": ("Claude Opus 5.5", (4.0, 20.0, 5.0, 0.20), ""),
    "claude-mythos-5-1": ("Claude Mythos 5.1", (10.0, 50.0, 12.50, 0.25), "Limited availability."),
    "claude-sonnet-5": ("Claude Sonnet 5", (2.0, 10.0, 2.50, 0.20), ""),
    "claude-fable-5": ("Claude Fable 5", (10.0, 50.0, 12.50, 1.00), ""),
    "claude-mythos-5": ("Claude Mythos 5", (10.0, 50.0, 12.50, 1.00), "Limited availability."),
    "claude-opus-5": ("Claude Opus 5", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-opus-4-8": ("Claude Opus 4.8", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-opus-4-7": ("Claude Opus 4.7", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-mythos-preview": ("Claude Mythos Preview", None,
                              "Research preview; its own price is not published."),
    "claude-opus-4-6": ("Claude Opus 4.6", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-sonnet-4-6": ("Claude Sonnet 4.6", (3.0, 15.0, 3.75, 0.30), ""),
    "claude-haiku-4-5": ("Claude Haiku 4.5", (1.0, 5.0, 1.25, 0.10), ""),
    "claude-haiku-4-5-20251001": ("Claude Haiku 4.5 (2025-10-01)", (1.0, 5.0, 1.25, 0.10), ""),
    "claude-opus-4-5": ("Claude Opus 4.5", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-opus-4-5-20251101": ("Claude Opus 4.5 (2025-11-01)", (5.0, 25.0, 6.25, 0.50), ""),
    "claude-sonnet-4-5": ("Claude Sonnet 4.5", (3.0, 15.0, 3.75, 0.30), ""),
    "claude-sonnet-4-5-20250929": ("Claude Sonnet 4.5 (2025-09-29)", (3.0, 15.0, 3.75, 0.30), ""),
}


def _sdk_model_names() -> tuple[str, ...]:
    """The model literals of the installed SDK's ModelParam (a Union[Literal[...], str])."""
    names: list[str] = []
    for arg in typing.get_args(ModelParam):
        names.extend(a for a in typing.get_args(arg) if isinstance(a, str))
    return tuple(names)


SDK_MODEL_NAMES: tuple[str, ...] = _sdk_model_names()


def _family(name: str) -> str:
    for family in _FAMILY_PRICE:
        if f"-{family}" in name:
            return family
    return "sonnet"  # an unknown tier is priced like the default's tier


def _parse_eol(text: str | None) -> date | None:
    """'June 30th, 2026' -> date(2026, 6, 30); None when absent or unreadable."""
    if not text:
        return None
    cleaned = re.sub(r"(\d+)(st|nd|rd|th)", r"\1", text.strip())
    for fmt in ("%B %d, %Y", "%Y-%m-%d", "%b %d, %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    return None


def _build_table() -> dict[str, ModelInfo]:
    table: dict[str, ModelInfo] = {}
    # every SDK model gets a row, even one this file has not heard of yet (a newer SDK)
    for name in dict.fromkeys((*SDK_MODEL_NAMES, *_PRICES)):
        label, prices, note = _PRICES.get(name, (name, None, "Not in this app's price list yet."))
        family = _family(name)
        source = PUBLISHED if prices is not None and name not in _ESTIMATED else FAMILY_ESTIMATE
        inp, out, cw, cr = prices if prices is not None else _FAMILY_PRICE[family]
        eol_text = DEPRECATED_MODELS.get(name)
        table[name] = ModelInfo(
            name=name, label=label, family=family, input_per_mtok=inp, output_per_mtok=out,
            cache_write_per_mtok=cw, cache_read_per_mtok=cr, deprecated=name in DEPRECATED_MODELS,
            end_of_life=_parse_eol(eol_text), price_source=source, note=note,
        )
    return table


MODELS: dict[str, ModelInfo] = _build_table()


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
