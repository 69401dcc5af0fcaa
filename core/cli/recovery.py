"""`python -m core recovery scan [--json]` and `python -m core recovery cleanup [--apply]`."""

from __future__ import annotations

import argparse
import json

from core.cli import add_action, add_group
from core.recovery import apply_cleanup, cleanup_preview, scan, summary
from core.store import get_engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rec = add_group(sub, "recovery", help="find work that stopped half-way; clean up expired rows")
    p = add_action(rec, "scan", _scan, help="interrupted/failed/paused batches, orphaned drafts and conversations")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_action(rec, "cleanup", _cleanup,
                   help="count (or with --apply remove) expired drafts, checkpoints, error logs")
    p.add_argument("--apply", action="store_true", help="remove them (default: only count)")


def _scan(args: argparse.Namespace) -> int:
    found = scan(get_engine(), deep=True)  # a command can afford the check no index answers
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    counts = summary(get_engine(), deep=True)
    for kind, findings in found.items():
        listed = f" (the first {len(findings):,} listed)" if len(findings) < counts[kind] else ""
        print(f"{kind.replace('_', ' ')}: {counts[kind]:,}{listed}")
        for f in findings:
            print(f"  {f['id']}  {f['what_happened']}\n      -> {f['recommended_action']}")
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    engine = get_engine()
    counts = apply_cleanup(engine) if args.apply else cleanup_preview(engine)
    verb = "removed" if args.apply else "would remove"
    print(f"{verb}: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))
    return 0
