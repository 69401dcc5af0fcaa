"""`python -m core errors export|stats|retention`: the error log from the command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.cli import add_action, add_group
from core.config import get_settings
from core.errorlog import (
    ERROR_TYPE_NAMES,
    SEVERITY_ORDER,
    ErrorFilter,
    apply_retention,
    error_stats,
    retention_preview,
)
from core.errorlog.export import export_csv
from core.store import get_engine

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str) -> datetime:
    """An ISO 8601 date/time (UTC unless it says otherwise) or a span back from now: 90m, 24h, 7d."""
    value = text.strip()
    rel = _RELATIVE.match(value)
    if rel:
        limit = get_settings().time_span_max_days
        span = timedelta(days=limit)
        amount = int(rel.group(1))
        # compared in the span's unit, before timedelta() can overflow on a huge number
        if amount > span / timedelta(**{_UNITS[rel.group(2)]: 1}):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} reaches back more than {limit:,} days")
        return datetime.now(UTC) - timedelta(**{_UNITS[rel.group(2)]: amount})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a date/time: use ISO 8601 (2026-11-29 or 2026-11-29T08:00:00Z) or 90m, 24h, 7d"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    errors = add_group(sub, "errors", help="search, export and summarise the error log")

    p = add_action(
        errors, "export", _export, help="write the filtered error rows to a CSV file (prints the row count)",
        description="Write exactly the rows the filters select (newest first) to a CSV file. "
                    "Repeat a filter option to match any of its values.")
    p.add_argument("--out", required=True, type=Path, help="CSV file to write (replaced only on success)")
    p.add_argument("--search", default="", help="text the message contains (literal, case-insensitive)")
    p.add_argument("--type", action="append", choices=ERROR_TYPE_NAMES, dest="types", help="error type")
    p.add_argument("--severity", action="append", choices=SEVERITY_ORDER, dest="severities", help="severity")
    p.add_argument("--code", action="append", dest="codes", help="error code, e.g. rate_limited")
    p.add_argument("--component", action="append", dest="components", help="component, e.g. batch_worker")
    p.add_argument("--since", type=parse_time, help="from this time (ISO 8601, or 24h / 7d back from now)")
    p.add_argument("--until", type=parse_time, help="before this time (ISO 8601, or 24h / 7d back from now)")
    p.add_argument("--batch", dest="operation_id", help="batch (operation) id")
    p.add_argument("--request-id", dest="request_id", help="model request id")
    p.add_argument("--resolved", choices=("yes", "no"), help="only resolved (yes) or unresolved (no) rows")

    p = add_action(errors, "stats", _stats, help="totals, shares and per-bucket counts over a time window")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--since", type=parse_time, default=None, help="window start (default: 24h back)")
    p.add_argument("--until", type=parse_time, default=None, help="window end (default: now)")
    p.add_argument("--bucket", choices=("hour", "day"), default="hour", help="bucket size of the series")

    p = add_action(errors, "retention", _retention,
                   help="show (or with --apply, remove) rows past their retention")
    p.add_argument("--apply", action="store_true", help="remove them (default: only count them)")


def _export(args: argparse.Namespace) -> int:
    # validate everything before the database or the file system is touched
    flt = ErrorFilter(
        search=args.search, types=args.types, severities=args.severities, codes=args.codes,
        components=args.components, since=args.since, until=args.until,
        resolved=None if args.resolved is None else args.resolved == "yes",
        request_id=args.request_id, operation_id=args.operation_id,
    )
    out: Path = args.out
    if not out.parent.is_dir():
        print(f"error: the folder of --out does not exist: {out.parent}", file=sys.stderr)
        return 2
    engine = get_engine()
    # write beside the target and rename: a failed export leaves no partial file behind. The rename
    # runs in the audit's transaction: the file lands if and only if the export is audited
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:

            def land() -> None:
                fh.close()
                os.replace(tmp_name, out)

            count = export_csv(engine, flt, fh, then=land)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    print(f"{count} rows written to {out}")
    return 0


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _stats(args: argparse.Namespace) -> int:
    since = args.since or datetime.now(UTC) - timedelta(hours=24)
    if args.until is not None and since > args.until:
        print("error: --until is before --since", file=sys.stderr)
        return 2
    engine = get_engine()
    stats = error_stats(engine, since=since, until=args.until, bucket=args.bucket)
    if args.json:
        print(json.dumps(stats, indent=2, default=_jsonable))
        return 0
    total = stats["total"]
    print(f"{total} errors from {stats['since']} to {stats['until']}")
    print("by severity: " + ", ".join(f"{k} {v}" for k, v in stats["by_severity"].items()))
    print("by type:     " + ", ".join(f"{k} {v}" for k, v in stats["by_type"].items() if v))
    print("top codes:   " + ", ".join(f"{c['code']} {c['count']}" for c in stats["top_codes"]))
    print(f"recoverable {stats['recoverable_share']:.1%}, recovered automatically {stats['recovered_share']:.1%}, "
          f"unresolved {stats['unresolved']}")
    return 0


def _retention(args: argparse.Namespace) -> int:
    engine = get_engine()
    report = apply_retention(engine) if args.apply else retention_preview(engine)
    verb = "removed" if args.apply else "would remove"
    print(f"{verb} {report['total']} rows: {report['error_or_critical']} error/critical older than "
          f"{report['error_cutoff']}, {report['other']} others older than {report['other_cutoff']}")
    return 0
