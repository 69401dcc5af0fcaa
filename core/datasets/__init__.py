"""Trainer-ready datasets: exports in each trainer's format, a split without duplicates across it, the card, health.

- `DatasetExport(engine, filter, ExportSpec(...))`: the one export path (CLI files, stdout, a page's zip).
- `ExportSpec`: format (openai | sharegpt | hf | csv), status (accepted by default), split ratio,
  system-prompt policy (keep | drop | replace), card.
- `dataset_health(engine, filter)`: review states, score histogram, duplicate rate, distinct-1/2, coverage.
"""

from core.datasets.card import NOT_SCORED, SCORE_BINS, CardStats, render_card, score_bin
from core.datasets.export import (
    FORMAT_ALIASES,
    FORMAT_LABELS,
    STATUSES,
    DatasetExport,
    ExportResult,
    ExportSpec,
    StatusChoice,
    card_path,
    format_for,
    side_path,
)
from core.datasets.formats import (
    CSV_COLUMNS,
    FORMATS,
    SHAREGPT_ROLES,
    SYSTEM_POLICIES,
    DatasetFormat,
    SystemPolicy,
)
from core.datasets.health import REVIEW_STATES, DatasetHealth, dataset_health, distinct_n
from core.datasets.split import Side, assign, plan_split, train_target

__all__ = [
    "CSV_COLUMNS", "FORMATS", "FORMAT_ALIASES", "FORMAT_LABELS", "NOT_SCORED", "REVIEW_STATES", "SCORE_BINS",
    "SHAREGPT_ROLES", "STATUSES", "SYSTEM_POLICIES", "CardStats", "DatasetExport", "DatasetFormat", "DatasetHealth",
    "ExportResult", "ExportSpec", "Side", "StatusChoice", "SystemPolicy", "assign", "card_path", "dataset_health",
    "distinct_n", "format_for", "plan_split", "render_card", "score_bin", "side_path", "train_target",
]
