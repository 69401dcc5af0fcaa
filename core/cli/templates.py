"""`python -m core templates list|show|export|import|archive`: templates as data, one YAML file per template."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core.cli import add_action, add_group, print_error
from core.cli.args import template_name, whole_number
from core.store import get_engine
from core.templates.model import Template
from core.templates.store import archive_template, get_template, list_templates, save_template, usage_counts
from core.templates.yaml_io import TemplateFileInvalid, dump, load


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = add_group(sub, "templates", help="list, show, export, import and archive templates")
    p = add_action(group, "list", _list, help="every template's latest version, with usage counts")
    p.add_argument("--all", action="store_true", help="archived templates too")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_action(group, "show", _show, help="print one version of a template as its YAML file")
    p.add_argument("name", type=template_name)
    p.add_argument("--version", type=whole_number(1, "template_max_versions"), help="default: the latest")
    p = add_action(group, "export", _export, help="write a template to a YAML file")
    p.add_argument("name", type=template_name)
    p.add_argument("--out", required=True, help="file to write ('-' for stdout)")
    p.add_argument("--version", type=whole_number(1, "template_max_versions"), help="default: the latest")
    p = add_action(group, "import", _import, help="a YAML file as a new template, or a new version of one")
    p.add_argument("file")
    p = add_action(group, "archive", _archive, help="hide a template from the pickers (its versions are kept)")
    p.add_argument("name", type=template_name)


def _row(t: Template, names: dict[str, str], used: dict[str, dict[str, int]]) -> dict[str, Any]:
    counts = used.get(t.name, {"batches": 0, "conversations": 0})
    return {"name": t.name, "title": t.title, "version": t.version, "archived": t.archived,
            "variables": list(t.content.variables), "edge_cases": [e.name for e in t.content.edge_cases],
            "turns": [t.content.min_turns, t.content.max_turns], "model": t.content.model,
            "author": names.get(t.created_by or "", "built-in" if t.created_by is None else t.created_by[:8]),
            "saved_at": t.created_at.isoformat() if t.created_at else None, **counts}


def _list(args: argparse.Namespace) -> int:
    from core.auth.users import names_of

    engine = get_engine()
    found = list_templates(engine, include_archived=args.all)
    names = names_of(engine, (t.created_by for t in found))
    rows = [_row(t, names, usage_counts(engine)) for t in found]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        flags = " (archived)" if r["archived"] else ""
        print(f"{r['name']:<24} v{r['version']:<4} {r['batches']:>5} batches {r['conversations']:>7} conversations  "
              f"{r['title']}{flags}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.auth.users import names_of

    engine = get_engine()
    t = get_template(engine, args.name, args.version)
    latest = get_template(engine, args.name).version
    author = names_of(engine, [t.created_by]).get(t.created_by or "", "built-in")
    when = t.created_at.isoformat(timespec="seconds") if t.created_at else "the first migration"
    print(f"# version {t.version} of {latest}, saved by {author} at {when}" + (" (archived)" if t.archived else ""))
    sys.stdout.write(dump(t))
    return 0


def _export(args: argparse.Namespace) -> int:
    t = get_template(get_engine(), args.name, args.version)
    text = dump(t)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, out)  # a half-written file never has the final name
    print(f"exported {t.name} version {t.version} to {args.out}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    try:
        data = Path(args.file).read_bytes() if args.file != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        print_error(f"error: {args.file}: cannot be read ({exc.strerror or exc}).")
        return 2
    try:
        slug, content = load(data)
    except TemplateFileInvalid as exc:
        for problem in exc.problems:
            print_error(f"error: {args.file}: {problem.field}: {problem.message}")
        print_error("nothing was imported.")
        return 2
    engine = get_engine()
    before = _latest_version(engine, slug)
    saved = save_template(engine, slug, content)
    if before == saved.version:
        print(f"{slug} is unchanged: version {saved.version} already says exactly this")
    else:
        print(f"imported {slug} as version {saved.version}")
    return 0


def _latest_version(engine: Any, slug: str) -> int | None:
    from core.errors import ValidationError

    try:
        return get_template(engine, slug).version
    except ValidationError:
        return None


def _archive(args: argparse.Namespace) -> int:
    t = archive_template(get_engine(), args.name)
    print(f"archived {t.name} (version {t.version} stays readable; batches and conversations keep naming it)")
    return 0
