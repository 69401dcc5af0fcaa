"""`python -m core review list | accept | reject`: the review queue and decisions on it (reviewers and admins).

Run as the user STUDIO_USER names: anyone else has an empty queue, and an id or batch they may not
review is not found (exit 1). `--batch` decides the batch's conversations that need review as the
resumable bulk operation (core.review): run the same command again after an interruption and it
continues where it stopped, deciding nothing twice.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.batches.service import resolve_batch_id
from core.cli import add_action, add_group, plain_fields, print_rows
from core.cli.args import bounded_text, one_of, whole_number
from core.review import STATUSES, ReviewFilter, bulk_decide, decide, review_page
from core.store import get_engine
from core.wording import counted

_LIST_FIELDS = ("id", "batch_id", "created_at")
_VERBS = {"accept": "accepted", "reject": "rejected"}


def _id_list(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give at least one conversation id")
    return ids


_id_list.__name__ = "ids"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = add_group(sub, "review", help="the review queue: list it, accept or reject conversations (reviewers)")
    p = add_action(group, "list", _list, help="conversations by review status, oldest first (default: the queue)")
    p.add_argument("--status", type=one_of(lambda: STATUSES, "status"), default="needs_review",
                   help=f"one of {', '.join(STATUSES)} (default needs_review)")
    p.add_argument("--batch", help="only this batch's conversations (its id, or the first characters of it)")
    p.add_argument("--limit", type=whole_number(1, "list_max_rows"), default=50, help="at most this many (50)")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    for verb, decision in _VERBS.items():
        p = add_action(group, verb, _decide, help=f"mark conversations {decision}, by id or a whole batch's queue")
        p.set_defaults(decision=decision)
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--ids", type=_id_list, help="comma-separated conversation ids")
        which.add_argument("--batch", help="every conversation of this batch that needs review (resumable)")
        p.add_argument("--note", type=bounded_text("stored_reason_max_chars"), help="a note kept with the decision")


def _list(args: argparse.Namespace) -> int:
    engine = get_engine()
    batch_id = resolve_batch_id(engine, args.batch) if args.batch else None
    page = review_page(engine, ReviewFilter(status=args.status, batch_id=batch_id), page_size=args.limit)
    rows = [{**plain_fields(r, _LIST_FIELDS), "status": r["review_status"], "score": r["quality_score"],
             "checks": r["failed_checks"], "duplicate_of": r["duplicate_of"]} for r in page.rows]

    def line(r: dict[str, Any]) -> str:
        score = "-" if r["score"] is None else str(r["score"])
        failed = ",".join(r["checks"]) or "-"
        dup = f"  duplicates {r['duplicate_of']}" if r["duplicate_of"] else ""
        return f"{r['id']}  {r['created_at']}  {r['status']:<12}  score {score:>3}  failed {failed}{dup}"

    return print_rows(rows, as_json=args.json, line=line,
                      footer=f"{len(rows)} of {counted(page.total, 'conversation')} ({args.status})")


def _decide(args: argparse.Namespace) -> int:
    engine = get_engine()
    if args.ids:
        n = decide(engine, args.ids, args.decision, args.note)
        print(f"{args.decision} {counted(n, 'conversation')}")
        return 0
    batch_id = resolve_batch_id(engine, args.batch)
    result = bulk_decide(engine, ReviewFilter(batch_id=batch_id), args.decision, args.note)
    resumed = " (resumed an interrupted run)" if result.resumed else ""
    print(f"{args.decision} {counted(result.decided, 'conversation')} of batch {batch_id}{resumed}")
    print(f"operation {result.operation_id}", file=sys.stderr)
    return 0
