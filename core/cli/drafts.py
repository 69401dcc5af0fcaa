"""`python -m core drafts list [--all] [--json] | resume ID [--json] | discard ID`: unfinished single generations.

A draft is its owner's: another person's id is answered as an unknown one (exit 1), whatever
their role, but an admin's.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import add_action, add_group, plain_fields, print_rows
from core.cli.generate import run_and_print
from core.drafts import DraftSession, discard_draft, list_unfinished_drafts
from core.store import get_engine

_FIELDS = ("id", "user_id", "template", "status", "progress", "chars", "error_message", "created_at", "updated_at")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    drafts = add_group(sub, "drafts", help="unfinished single generations: list, resume, discard")
    p = add_action(drafts, "list", _list, help="your in-progress and failed drafts")
    p.add_argument("--all", action="store_true", help="every draft you may see (an admin: everyone's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_action(drafts, "resume", _resume, help="continue a draft from its saved text and save the conversation")
    p.add_argument("id", help="the draft's id")
    p.add_argument("--json", action="store_true", help="print JSON: conversation, usage, cost")
    p = add_action(drafts, "discard", _discard, help="discard an unfinished draft")
    p.add_argument("id", help="the draft's id")


def _list(args: argparse.Namespace) -> int:
    rows = [plain_fields(r, _FIELDS) for r in list_unfinished_drafts(get_engine(), everyone=args.all)]
    return print_rows(rows, as_json=args.json, footer=None if rows else "no unfinished drafts", line=lambda r: (
        f"{r['id']}  {r['status']:<11}  {r['progress']:.0%}  {r['chars'] or 0} chars  {r['updated_at']}  "
        f"{r['template']}"))


def _resume(args: argparse.Namespace) -> int:
    draft = DraftSession.load(get_engine(), args.id)  # before the model client starts: an unknown id costs nothing
    code = run_and_print(lambda client: draft.run(client=client), as_json=args.json)
    print(f"draft {draft.id} finished: conversation {draft.conversation_id}", file=sys.stderr)
    return code


def _discard(args: argparse.Namespace) -> int:
    if discard_draft(get_engine(), args.id):
        print(f"discarded draft {args.id}")
    else:
        print(f"draft {args.id} was already finished or discarded", file=sys.stderr)
    return 0
