"""`python -m core conversations list | show ID | delete ID | export --out FILE [--format F] [--status S] [--split R] [--card]`.

Each runs as the user STUDIO_USER names and reaches what they may (core.auth.permissions): an
id of a conversation they may not see is answered as an unknown one (exit 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from core.batches.service import resolve_batch_id
from core.cli import add_action, add_group, plain_fields, print_error, print_rows
from core.cli.args import bounded_text, template_name, whole_number
from core.conversations import (
    ConversationFilter,
    delete_conversation,
    list_conversations,
    require_conversation,
    to_messages,
)
from core.datasets import (
    FORMAT_ALIASES,
    FORMATS,
    STATUSES,
    SYSTEM_POLICIES,
    DatasetExport,
    ExportSpec,
    format_for,
)
from core.errors import ValidationError
from core.store import get_engine

_LIST_FIELDS = ("id", "created_at", "template", "model", "batch_id", "item_index", "draft_id", "owner_id",
                "created_by", "turn_count", "input_tokens", "output_tokens", "cost_usd")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    conv = add_group(sub, "conversations", help="saved conversations")
    p = add_action(conv, "list", _list, help="the newest conversations you may see")
    p.add_argument("--batch", help="only this batch's conversations")
    p.add_argument("--template", type=template_name, help="only this template")
    p.add_argument("--limit", type=whole_number(1, "list_max_rows"), default=20, help="at most this many (20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_action(conv, "show", _show, help="one conversation, turn by turn")
    p.add_argument("id", help="the conversation's id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_action(conv, "delete", _delete, help="delete one of your conversations (an admin: anyone's)")
    p.add_argument("id", help="the conversation's id")
    p = add_action(conv, "export", _export, help="write a trainer-ready dataset: chat JSONL, ShareGPT, Hugging Face, CSV")
    p.add_argument("--out", required=True, help="file to write ('-' for stdout: one text file, no split or card)")
    p.add_argument("--format", choices=(*FORMATS, *FORMAT_ALIASES),
                   help="default: from the file name (.csv, .parquet), else openai; jsonl is openai")
    p.add_argument("--status", choices=STATUSES, default="accepted", help="review status to export (accepted)")
    p.add_argument("--split", type=_ratio, metavar="R",
                   help="train share, e.g. 0.9: FILE.train.EXT and FILE.validation.EXT, no duplicate across them")
    p.add_argument("--system-prompt", choices=SYSTEM_POLICIES, default="keep",
                   help="keep the system prompt (default), drop it, or replace it with --system-text")
    p.add_argument("--system-text", type=bounded_text("generation_max_template_chars"),
                   help="the system prompt every exported conversation gets (with --system-prompt replace)")
    p.add_argument("--card", action="store_true", help="write the dataset card beside it (FILE.card.md)")
    p.add_argument("--batch", help="only this batch's conversations (its id, or the first characters of it)")
    p.add_argument("--template", type=template_name, help="only this template")

def _list(args: argparse.Namespace) -> int:
    page = list_conversations(get_engine(), ConversationFilter(batch_id=args.batch, template=args.template),
                              page_size=args.limit)
    rows = [plain_fields(r, _LIST_FIELDS) for r in page.rows]

    def line(r: dict[str, Any]) -> str:
        source = f"batch {r['batch_id'][:8]} #{r['item_index']}" if r["batch_id"] else "single"
        return f"{r['id']}  {r['created_at']}  {r['template']:<20}  {r['turn_count']} turns  {source}  {r['created_by'] or ''}"

    return print_rows(rows, as_json=args.json, line=line, footer=f"{len(rows)} of {page.total} conversations")


def _show(args: argparse.Namespace) -> int:
    row = require_conversation(get_engine(), args.id)
    if args.json:
        print(json.dumps({**plain_fields(row, _LIST_FIELDS), "params": row["params"], "messages": to_messages(row)},
                         indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(f"{row['id']}  {row['template']}  {row['model']}  {row['turn_count']} turns  by {row['created_by'] or '?'}")
    for m in to_messages(row):
        print(f"\n{m['role'].capitalize()}: {m['content']}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    delete_conversation(get_engine(), args.id)
    print(f"deleted conversation {args.id}")
    return 0


def _ratio(text: str) -> float:
    """A train share: a number between 0 and 1, both excluded."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number; give the train share, e.g. 0.9") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"the train share must be between 0 and 1 (both excluded); got {text[:40]!r}")
    return value


_OPTIONS = {"format": "--format", "status": "--status", "split": "--split", "system_prompt": "--system-prompt",
            "system_text": "--system-text", "card": "--card", "out": "--out"}


def _refuse(exc: ValidationError) -> int:
    """A refused combination of arguments, named as the option it is about, like argparse's own (exit 2)."""
    option = _OPTIONS.get(exc.field or "", exc.field or "arguments")
    reason = exc.user_message.split(": ", 1)[1] if ": " in exc.user_message else exc.user_message
    print_error(f"python -m core conversations export: error: argument {option}: {reason}")
    return 2


def _export(args: argparse.Namespace) -> int:
    engine = get_engine()
    try:
        spec = ExportSpec(format=format_for(args.format, args.out), status=args.status, split=args.split,
                          system_prompt=args.system_prompt, system_text=args.system_text, card=args.card)
        if args.out == "-" and (spec.format == "hf" or spec.split is not None or spec.card):
            raise ValidationError("out", field="out", user_message=(
                "out: '-' streams one text file; a Hugging Face file, a split or a card needs a file name"))
    except ValidationError as exc:
        return _refuse(exc)
    # a batch the user may not see is not found, as an unknown id is (and a short id is enough)
    batch_id = resolve_batch_id(engine, args.batch) if args.batch else None
    export = DatasetExport(engine, ConversationFilter(batch_id=batch_id, template=args.template), spec)
    if args.out == "-":
        result = export.stream(sys.stdout)
        print(f"exported {result.total} conversations to stdout", file=sys.stderr)
        _say_what_else_matches(export, result.total)
        return 0
    result = export.write(Path(args.out))
    parts = ", ".join(f"{result.rows[side]:,} in {path}" for side, path in zip(result.rows, result.files, strict=False))
    card = f"; card {result.files[-1]}" if spec.card else ""
    print(f"exported {result.total:,} conversations ({spec.format}, status {spec.status}): {parts}{card}",
          file=sys.stderr)
    _say_what_else_matches(export, result.total)
    return 0


def _say_what_else_matches(export: DatasetExport, exported: int) -> None:
    """An empty export by status says which other statuses hold conversations (the gate may not have run yet)."""
    if exported or export.spec.status == "all":
        return
    others = {s: n for s, n in export.status_counts().items() if s != export.spec.status}
    if others:
        held = ", ".join(f"{n:,} {s}" for s, n in sorted(others.items()))
        print(f"note: no {export.spec.status} conversation matches; {held} do (--status all exports every one)",
              file=sys.stderr)
