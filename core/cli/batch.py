"""`python -m core batch create|status|list|resume|pause|cancel`."""

from __future__ import annotations

import argparse
import json

from core.batches.csv_import import parse_csv
from core.batches.service import (
    cancel_batch,
    create_batch,
    get_batch_status,
    list_batches,
    pause_batch,
    resolve_batch_id,
    resume_batch,
    set_budget,
)
from core.batches.states import BATCH_MODES, BATCH_STATES
from core.cli import add_action, add_group, print_rows
from core.cli.args import bounded_text, dollars, one_of, template_name, turns, variable_value, whole_number
from core.store import get_engine
from core.templates.coverage import COVERAGE_MODES
from core.templates.store import resolve
from core.ui.timefmt import exact


def _csv_list(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    batch = add_group(sub, "batch", help="create, inspect and control batches")

    p = add_action(batch, "create", _create, help="create a queued batch; prints its id")
    p.add_argument("--template", required=True, type=template_name, help="a template's name (templates list)")
    p.add_argument("--count", type=whole_number(1, "batch_max_items"),
                   help="number of conversations (default: all CSV rows)")
    p.add_argument("--concurrency", type=whole_number(1, "max_concurrency"), help="parallel calls for this batch")
    p.add_argument("--csv", help="CSV file with columns persona,emotion,topic[,turns][,any custom variable]")
    p.add_argument("--personas", help="comma-separated personas (default: the template's)")
    p.add_argument("--emotions", help="comma-separated emotions (default: the template's)")
    p.add_argument("--topics", help="comma-separated topics (default: the template's)")
    p.add_argument("--var", action="append", type=variable_value, default=[], metavar="NAME=A,B",
                   help="comma-separated values of a custom variable (repeat for each; default: the template's)")
    p.add_argument("--edge-cases", help="comma-separated edge cases, or 'none' (default: all of the template's)")
    p.add_argument("--coverage", choices=COVERAGE_MODES, default="cycle",
                   help="cycle through the grid (default), or balance it: every cell as often as the count allows")
    p.add_argument("--turns", type=turns, default=None, help="messages per conversation, even (default: settings)")
    p.add_argument("--model", help="model name (default: settings)")
    p.add_argument("--name", type=bounded_text("batch_name_max_chars"), help="a label for the batch")
    p.add_argument("--mode", choices=BATCH_MODES, default="online",
                   help="online: one call per item (default); message_batches: remote Message Batches at half price")
    p.add_argument("--max-cost", type=dollars("batch_budget_max_usd"), metavar="USD",
                   help="a spend cap: the batch pauses before it would cost more")
    p.add_argument("--judge", action="store_true",
                   help="the optional LLM judge scores each conversation (judge cost kept apart)")

    p = add_action(batch, "status", _status, help="state, counts, tokens, cost, throughput and ETA of a batch")
    p.add_argument("id", help="the batch's id, or its first characters (8 are enough)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_action(batch, "list", _list, help="recent batches")
    p.add_argument("--status", type=one_of(lambda: BATCH_STATES, "batch state"), help="only batches in this state")
    p.add_argument("--limit", type=whole_number(1, "list_max_rows"), default=20, help="at most this many (20)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_action(batch, "resume", _resume,
                   help="resume a paused, failed or interrupted batch (done items are kept)")
    p.add_argument("id", help="the batch's id, or its first characters (8 are enough)")
    p.add_argument("--failed-only", action="store_true", help="requeue only the failed items")
    p.add_argument("--max-cost", type=dollars("batch_budget_max_usd"), metavar="USD",
                   help="give the batch this spend cap first (raise it to resume a batch its budget paused)")

    p = add_action(batch, "pause", _pause, help="stop taking new items; in-flight ones finish")
    p.add_argument("id", help="the batch's id, or its first characters (8 are enough)")

    p = add_action(batch, "cancel", _cancel, help="stop a batch for good; finished items are kept")
    p.add_argument("id", help="the batch's id, or its first characters (8 are enough)")


def _create(args: argparse.Namespace) -> int:
    engine = get_engine()
    custom = resolve(args.template, engine=engine).content.custom_variables
    rows = parse_csv(args.csv, variables=custom) if args.csv else None
    edge_cases = None if args.edge_cases is None else [] if args.edge_cases.strip() == "none" else \
        _csv_list(args.edge_cases) or []
    batch_id = create_batch(
        engine, template=args.template, count=args.count, rows=rows, personas=_csv_list(args.personas),
        emotions=_csv_list(args.emotions), topics=_csv_list(args.topics),
        turns=args.turns, model=args.model, concurrency=args.concurrency, name=args.name,
        variables={name: _csv_list(values) or [] for name, values in args.var} or None, edge_cases=edge_cases,
        coverage=args.coverage, mode=args.mode, budget_usd=args.max_cost,
        judge=args.judge)
    print(batch_id)
    return 0


def _id(args: argparse.Namespace) -> str:
    """The batch's full id: the whole id, or its first characters (the 8 the pages show are enough)."""
    return resolve_batch_id(get_engine(), args.id)


def _status(args: argparse.Namespace) -> int:
    st = get_batch_status(get_engine(), _id(args))
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
        return 0
    eta = "-" if st["eta_s"] is None else f"{st['eta_s']} s"
    print(f"{st['id']}  {st['state']}  {st['name']}  (by {st['owner'] or '-'})")
    print(f"  done {st['done']}  failed {st['failed']}  pending {st['pending']}  running {st['running']}  "
          f"skipped {st['skipped']}  of {st['total']}")
    final = st["final_throughput_per_min"]
    pace = f"{st['throughput_per_min']} items/min  ETA {eta}" if final is None else f"{final} items/min over the run"
    print(f"  tokens {st['tokens']:,}  cost ${st['cost_usd']:.4f}  {pace}")
    budget = "no budget" if st["budget_usd"] is None else f"budget ${st['budget_usd']:,.2f}"
    print(f"  mode {st['mode']}  {budget}")
    for sub in st["submissions"]:
        counts = "  ".join(f"{k} {v}" for k, v in sub["counts"].items())
        print(f"  remote {sub['remote_id'] or '(id not stored yet)'}  {sub['state']}  {sub['request_count']} requests  "
              f"{counts}")
    if st["status_reason"]:
        print(f"  {st['status_reason']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = list_batches(get_engine(), status=args.status, limit=args.limit)
    return print_rows(rows, as_json=args.json, footer=None if rows else "no batches", line=lambda st: (
        f"{st['id']}  {st['state']:<9}  {st['done']}/{st['total']} done  {st['failed']} failed  "
        f"{exact(st['created_at'])}  {st['owner'] or '-'}  {st['name']}"))


def _resume(args: argparse.Namespace) -> int:
    batch_id = _id(args)
    if args.max_cost is not None:
        set_budget(get_engine(), batch_id, args.max_cost)
    n = resume_batch(get_engine(), batch_id, failed_only=args.failed_only)
    what = "failed items requeued" if args.failed_only else "items to process"
    print(f"resumed {batch_id}: {n} {what}")
    return 0


def _pause(args: argparse.Namespace) -> int:
    batch_id = _id(args)
    pause_batch(get_engine(), batch_id)
    print(f"paused {batch_id}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    batch_id = _id(args)
    n = cancel_batch(get_engine(), batch_id)
    print(f"cancelled {batch_id}: {n} pending items skipped")
    return 0
