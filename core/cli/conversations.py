"""`python -m core conversations export --out FILE.jsonl [--batch ID] [--format jsonl|csv]`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from core.batches.service import resolve_batch_id
from core.cli import add_action, add_group
from core.cli.args import template_name
from core.conversations import ConversationFilter, iter_csv, iter_jsonl
from core.store import get_engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    conv = add_group(sub, "conversations", help="saved conversations")
    p = add_action(conv, "export", _export, help="stream conversations as fine-tuning JSONL (or CSV)")
    p.add_argument("--out", required=True, help="file to write ('-' for stdout)")
    p.add_argument("--batch", help="only this batch's conversations (its id, or the first characters of it)")
    p.add_argument("--template", type=template_name, help="only this template")
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name, else jsonl")


def _export(args: argparse.Namespace) -> int:
    engine = get_engine()
    fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "jsonl")
    # a batch the user may not see is not found, as an unknown id is (and a short id is enough)
    batch_id = resolve_batch_id(engine, args.batch) if args.batch else None
    flt = ConversationFilter(batch_id=batch_id, template=args.template)
    lines = iter_csv(engine, flt) if fmt == "csv" else iter_jsonl(engine, flt)
    if args.out == "-":
        n = _write_lines(lines, sys.stdout)
    else:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as fh:  # a half-written export never has the final name
            n = _write_lines(lines, fh)
        os.replace(tmp, out)
    if fmt == "csv":
        n -= 1  # the header line
    print(f"exported {n} conversations to {args.out}", file=sys.stderr)
    return 0


def _write_lines(lines: Iterable[str], out: TextIO) -> int:
    """Write each line to `out` as it is read; how many lines were written."""
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    return n
