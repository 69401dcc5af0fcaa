"""One stored conversation as each trainer's record: chat JSONL, ShareGPT, a Hugging Face row, a CSV row.

The system prompt goes by the export's policy (`keep`, `drop`, or `replace` with a text of the
export's), applied to the chat messages core.conversations.to_messages builds, so every format
carries the same turns in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from core.conversations import to_messages
from core.csv_cells import safe_cell

__all__ = ["CSV_COLUMNS", "FORMATS", "SHAREGPT_ROLES", "SYSTEM_POLICIES", "DatasetFormat", "SystemPolicy",
           "csv_cells", "hf_record", "messages", "openai_record", "sharegpt_record"]

DatasetFormat = Literal["openai", "sharegpt", "hf", "csv"]
SystemPolicy = Literal["keep", "drop", "replace"]
FORMATS: tuple[DatasetFormat, ...] = ("openai", "sharegpt", "hf", "csv")
SYSTEM_POLICIES: tuple[SystemPolicy, ...] = ("keep", "drop", "replace")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
# the first fifteen are the columns the CSV export had before the quality gate, in their order
CSV_COLUMNS = ("id", "created_at", "batch_id", "item_index", "draft_id", "template", "model", "persona",
               "emotion", "topic", "turn_count", "input_tokens", "output_tokens", "cost_usd", "messages",
               "template_version", "review_status", "quality_score", "duplicate_of")


def messages(row: Mapping[str, Any], policy: SystemPolicy = "keep", text: str | None = None) -> list[dict[str, str]]:
    """The chat messages of `row` with its system prompt kept, dropped, or replaced by `text`."""
    turns = [m for m in to_messages(row) if m["role"] != "system"]
    if policy == "drop":
        return turns
    system = text if policy == "replace" else row["system_prompt"]
    return [{"role": "system", "content": system}, *turns] if system else turns


def openai_record(msgs: list[dict[str, str]]) -> dict[str, Any]:
    """The chat fine-tuning line of OpenAI and of Anthropic (Bedrock): {"messages": [...]}, nothing else."""
    return {"messages": msgs}


def sharegpt_record(msgs: list[dict[str, str]]) -> dict[str, Any]:
    """ShareGPT: {"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}."""
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in msgs]}


def _params(row: Mapping[str, Any]) -> dict[str, Any]:
    return row["params"] or {}


def hf_record(row: Mapping[str, Any], msgs: list[dict[str, str]]) -> dict[str, Any]:
    """A row of the Hugging Face dataset: the messages column trainers read, and what to filter by."""
    params = _params(row)
    version = params.get("template_version")
    return {"id": row["id"], "messages": msgs, "template": row["template"],
            "template_version": int(version) if version is not None else None, "model": row["model"],
            "persona": str(params.get("persona", "")), "emotion": str(params.get("emotion", "")),
            "topic": str(params.get("topic", "")), "review_status": row["review_status"],
            "quality_score": row["quality_score"]}


def csv_cells(row: Mapping[str, Any], msgs: list[dict[str, str]]) -> list[str]:
    """The CSV row of CSV_COLUMNS, every cell through the one spreadsheet-safe helper (text is untrusted)."""
    params = _params(row)
    return [safe_cell(v) for v in (
        row["id"], row["created_at"], row["batch_id"], row["item_index"], row["draft_id"], row["template"],
        row["model"], params.get("persona", ""), params.get("emotion", ""), params.get("topic", ""),
        row["turn_count"], row["input_tokens"], row["output_tokens"], row["cost_usd"],
        json.dumps(msgs, ensure_ascii=False), params.get("template_version"), row["review_status"],
        row["quality_score"], row["duplicate_of"])]
