"""`python -m core conversations list | show ID | delete ID | export --out FILE [--batch ID] [--format jsonl|csv]`.

Each runs as the user STUDIO_USER names and reaches what they may (core.auth.permissions): an
id of a conversation they may not see is answered as an unknown one (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from core.batches.service import resolve_batch_id
from core.cli import add_action, add_group, plain_fields, print_rows
from core.cli.args import template_name, whole_number
from core.conversations import (
    ConversationExport,
    ConversationFilter,
    ExportFormat,
    delete_conversation,
    list_conversations,
    require_conversation,
    to_messages,
)
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
    p = add_action(conv, "export", _export, help="stream conversations as fine-tuning JSONL (or CSV)")
    p.add_argument("--out", required=True, help="file to write ('-' for stdout)")
    p.add_argument("--batch", help="only this batch's conversations (its id, or the first characters of it)")
    p.add_argument("--template", type=template_name, help="only this template")
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name, else jsonl")


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


def _export(args: argparse.Namespace) -> int:
    engine = get_engine()
    fmt: ExportFormat = args.format or ("csv" if args.out.lower().endswith(".csv") else "jsonl")
    # a batch the user may not see is not found, as an unknown id is (and a short id is enough)
    batch_id = resolve_batch_id(engine, args.batch) if args.batch else None
    export = ConversationExport(engine, ConversationFilter(batch_id=batch_id, template=args.template), fmt)
    if args.out == "-":
        n = _write_lines(export.lines(), sys.stdout)
    else:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as fh:  # a half-written export never has the final name
            n = _write_lines(export.lines(), fh)
        os.replace(tmp, out)
    export.done(n)  # written whole: the audit row says so
    print(f"exported {export.rows_in(n)} conversations to {args.out}", file=sys.stderr)
    return 0


def _write_lines(lines: Iterable[str], out: TextIO) -> int:
    """Write each line to `out` as it is read; how many lines were written."""
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    return n
