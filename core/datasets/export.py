"""One export of the filtered conversations in a trainer's format: files, an optional split, the card, one audit row.

`DatasetExport` is the one export path. The CLI writes files with `write(out)`, or streams one
text file to stdout with `stream(fh)`; a page's download is `archive()`, a zip of the same files
with the card always in it, built by the same `write` (into a temporary folder). Rows are read
in chunks (core.conversations.stream_rows), each written as it is read, so memory stays flat; a
split first reads only ids, links and hashes to plan the sides (core.datasets.split).

Files for `--out data.jsonl`: `data.jsonl`, or with a split `data.train.jsonl` and
`data.validation.jsonl` (the side before the suffix); the card is `data.card.md`. Every file is
written under a `.part` name and renamed once all of them are whole, so a cut export never
leaves a file with its final name.

Formats: `openai`, chat JSONL, one {"messages": [...]} a line (the Anthropic format is the same
lines); `sharegpt`, one {"conversations": [{"from", "value"}]} a line; `hf`, a Hugging Face
dataset saved as Parquet (`Dataset.from_generator(...).to_parquet`, built from a temporary
JSONL file of the rows, so a big set never sits in memory); `csv`, the columns of
core.datasets.formats.CSV_COLUMNS, each cell through core.csv_cells.safe_cell. The old format
name `jsonl` means `openai`.

An export is a read: the audit row (format, filter, status, split, system-prompt policy, rows,
whether complete) follows it in a transaction of its own, once the files are whole; an export
that fails before its end leaves none.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, current_actor
from core.auth.audit import AuditAction, audit
from core.auth.users import names_of
from core.config import get_settings
from core.conversations import ConversationFilter, stream_rows, visible
from core.datasets.card import CardFacts, CardStats, render_card
from core.datasets.formats import (
    CSV_COLUMNS,
    FORMATS,
    SYSTEM_POLICIES,
    DatasetFormat,
    SystemPolicy,
    csv_cells,
    hf_record,
    messages,
    openai_record,
    sharegpt_record,
)
from core.datasets.split import plan_split
from core.errors import ValidationError
from core.resilience import run_db
from core.store.schema import conversations, review_decisions, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["FORMAT_ALIASES", "FORMAT_LABELS", "STATUSES", "DatasetExport", "ExportResult", "ExportSpec",
           "StatusChoice", "card_path", "format_for", "side_path"]

StatusChoice = Literal["accepted", "needs_review", "rejected", "all"]
STATUSES: tuple[StatusChoice, ...] = ("accepted", "needs_review", "rejected", "all")
FORMAT_ALIASES: dict[str, DatasetFormat] = {"jsonl": "openai"}
FORMAT_LABELS: dict[DatasetFormat, str] = {
    "openai": "OpenAI / Anthropic chat JSONL", "sharegpt": "ShareGPT JSONL", "hf": "Hugging Face dataset (Parquet)",
    "csv": "CSV"}
_SUFFIXES: dict[DatasetFormat, str] = {"openai": ".jsonl", "sharegpt": ".jsonl", "hf": ".parquet", "csv": ".csv"}
_TEXT_FORMATS = ("openai", "sharegpt", "csv")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_.-]{1,80}")  # a name that reads the same in a shell command


def format_for(name: str | None, out: str) -> DatasetFormat:
    """The format asked for (an alias read as its format), else the one the file name says, else openai."""
    if name:
        fmt = FORMAT_ALIASES.get(name, name)
        if fmt not in FORMATS:
            raise _refused("format", f"there is no export format {name[:40]!r}; choose one of: "
                                     f"{', '.join(FORMATS)} (jsonl is openai)")
        return fmt  # type: ignore[return-value]
    lower = out.lower()
    return "csv" if lower.endswith(".csv") else "hf" if lower.endswith(".parquet") else "openai"


def side_path(out: Path, side: str) -> Path:
    """`data.jsonl` -> `data.train.jsonl`: the side goes before the suffix (after the whole name if there is none)."""
    return out.with_name(f"{out.stem}.{side}{out.suffix}") if out.suffix else out.with_name(f"{out.name}.{side}")


def card_path(out: Path) -> Path:
    """`data.jsonl` -> `data.card.md`."""
    return out.with_name(f"{out.stem if out.suffix else out.name}.card.md")


def _refused(field_name: str, reason: str) -> ValidationError:
    text = f"{field_name}: {reason}"
    return ValidationError(text, user_message=text, field=field_name)


@dataclass(frozen=True)
class ExportSpec:
    """What to export and how: format, which review status, a split ratio, the system-prompt policy, a card.

    Checked when made: a bad value is a ValidationError naming its field and why.
    """

    format: DatasetFormat = "openai"
    status: StatusChoice = "accepted"
    split: float | None = None  # the train share, 0 < split < 1; None: one file
    system_prompt: SystemPolicy = "keep"
    system_text: str | None = None  # the replacement, with system_prompt="replace"
    card: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise _refused("format", f"choose one of {', '.join(FORMATS)}; got {str(self.format)[:40]!r}")
        if self.status not in STATUSES:
            raise _refused("status", f"choose one of {', '.join(STATUSES)}; got {str(self.status)[:40]!r}")
        if self.split is not None and not (isinstance(self.split, int | float) and math.isfinite(self.split)
                                           and 0 < self.split < 1):
            raise _refused("split", f"the train share must be a number between 0 and 1 (both excluded), "
                                    f"e.g. 0.9; got {str(self.split)[:40]!r}")
        if self.system_prompt not in SYSTEM_POLICIES:
            raise _refused("system_prompt", f"choose one of {', '.join(SYSTEM_POLICIES)}; "
                                            f"got {str(self.system_prompt)[:40]!r}")
        text = self.system_text
        if self.system_prompt == "replace" and not (text or "").strip():
            raise _refused("system_text", "replacing the system prompt needs the text to put in its place")
        if self.system_prompt != "replace" and text:
            raise _refused("system_text", "a replacement text is used only with the system-prompt policy 'replace'")
        limit = get_settings().generation_max_template_chars
        if text and len(text) > limit:
            raise _refused("system_text", f"is {len(text):,} characters long; at most {limit:,} are allowed")

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The status filter as a condition on conversations (none for 'all')."""
        return [] if self.status == "all" else [conversations.c.review_status == self.status]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "status": self.status, "system_prompt": self.system_prompt}
        if self.split is not None:
            out["split"] = self.split
        if self.system_text:
            out["system_text"] = self.system_text
        return out


@dataclass
class ExportResult:
    """The files written (final names), rows per side ('all' without a split), and whether every matching row is in."""

    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    stats: CardStats = field(default_factory=CardStats)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class DatasetExport:
    """One export of the filtered conversations, as the actor who asked for it, and its one audit row.

    Made where the person acts (the page run, the CLI command); the files may be built later on
    another thread (a download is built when it is clicked) and still read as that person.
    """

    def __init__(self, engine: Engine, flt: ConversationFilter | None = None, spec: ExportSpec | None = None, *,
                 via: str = "cli", actor: Actor | None = None, title: str = "conversations") -> None:
        self.engine, self.flt, self.spec, self.via = engine, flt or ConversationFilter(), spec or ExportSpec(), via
        self.actor = actor or current_actor(engine)
        self.title = title

    # -- the lines of one record ------------------------------------------------------------------

    def _encoder(self) -> Callable[[Any], str]:
        spec = self.spec
        buf = io.StringIO()
        writer = csv.writer(buf)

        def encode(row: Any) -> str:
            msgs = messages(row, spec.system_prompt, spec.system_text)
            if spec.format == "csv":
                writer.writerow(csv_cells(row, msgs))
                text = buf.getvalue()
                buf.seek(0)
                buf.truncate()
                return text
            record = (openai_record(msgs) if spec.format == "openai" else sharegpt_record(msgs)
                      if spec.format == "sharegpt" else hf_record(row, msgs))
            return json.dumps(record, ensure_ascii=False) + "\n"

        return encode

    def _header(self) -> str:
        if self.spec.format != "csv":
            return ""
        buf = io.StringIO()
        csv.writer(buf).writerow(CSV_COLUMNS)
        return buf.getvalue()

    # -- the one pass ---------------------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[str, Any]]:
        """(side, row) for each row of the export, oldest first; the side is 'all' without a split."""
        extra = self.spec.conditions()
        plan = (plan_split(self.engine, self.flt, self.actor, extra, self.spec.split)
                if self.spec.split is not None else None)
        for row in stream_rows(self.engine, self.flt, self.actor, extra=extra):
            if plan is None:
                yield "all", row
            elif row["id"] in plan:  # one made after the plan was read waits for the next export
                yield plan[row["id"]], row

    def lines(self) -> Iterator[str]:
        """One text file's lines (openai, sharegpt, csv with its header), without a split: for a stream."""
        if self.spec.format not in _TEXT_FORMATS or self.spec.split is not None:
            raise _refused("out", "only one text file (openai, sharegpt or csv, without a split) can be streamed")
        encode = self._encoder()
        header = self._header()
        if header:
            yield header
        for _side, row in self._rows():
            yield encode(row)

    def stream(self, out: TextIO) -> ExportResult:
        """Write the one text file to `out` as it is read, then the audit row; the rows written."""
        if self.spec.card:
            raise _refused("card", "a card is written beside a file: give --out a file name, not '-'")
        n = 0
        header = bool(self._header())
        for line in self.lines():
            out.write(line)
            n += 1
        result = ExportResult(rows={"all": n - 1 if header else n})
        self._audit(result)
        return result

    def write(self, out: Path, *, limit_bytes: int | None = None, card: bool | None = None) -> ExportResult:
        """Write the export's files (and its card if the spec or `card` asks) beside `out`; then its audit row.

        `limit_bytes` stops before the row that would take the records past that many bytes (whole rows
        only; a download's bound); the result then says it is not complete.
        """
        sides = ("train", "validation") if self.spec.split is not None else ("all",)
        finals = {s: (side_path(out, s) if s != "all" else out) for s in sides}
        tag = f".{uuid.uuid4().hex[:8]}.part"
        # final name -> the .part file it is written as
        parts = {final: final.with_name(final.name + tag) for final in finals.values()}
        result = ExportResult()
        try:
            with tempfile.TemporaryDirectory(prefix="studio-export-") as scratch:
                hf = self.spec.format == "hf"  # rows go to a JSONL file the Parquet file is built from
                sinks = {s: (Path(scratch) / f"{s}.jsonl") if hf else parts[p] for s, p in finals.items()}
                self._fill(sinks, result, limit_bytes)
                if hf:
                    for s, final in finals.items():
                        _parquet(sinks[s], parts[final], Path(scratch))
            result.files = list(finals.values())
            if card if card is not None else self.spec.card:
                final = card_path(out)
                parts[final] = final.with_name(final.name + tag)
                result.files.append(final)
                parts[final].write_text(self._card(result), encoding="utf-8")
            for final, part in parts.items():  # every file whole before any takes its final name
                os.replace(part, final)
        finally:
            for part in parts.values():
                part.unlink(missing_ok=True)
        self._audit(result)
        return result

    def _fill(self, sinks: dict[str, Path], result: ExportResult, limit_bytes: int | None) -> None:
        """Write each row to its side's file as it is read; stop before `limit_bytes` (all files together)."""
        encode = self._encoder()
        header = self._header()
        handles = {s: path.open("w", encoding="utf-8", newline="") for s, path in sinks.items()}
        try:
            used = 0
            for s, fh in handles.items():
                fh.write(header)
                used += len(header.encode())
                result.rows[s] = 0
            for side, row in self._rows():
                text = encode(row)
                size = len(text.encode())
                if limit_bytes is not None and used + size > limit_bytes:
                    result.complete = False
                    break
                used += size
                handles[side].write(text)
                result.rows[side] += 1
                result.stats.add(row, side)
        finally:
            for fh in handles.values():
                fh.close()

    def archive(self, limit_bytes: int | None = None) -> bytes:
        """A zip of the export's files and its card, rows up to `limit_bytes` (whole rows): a page's download."""
        with tempfile.TemporaryDirectory(prefix="studio-download-") as folder:
            out = Path(folder) / f"{self.title}{_SUFFIXES[self.spec.format]}"
            result = self.write(out, limit_bytes=limit_bytes, card=True)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for path in result.files:
                    zf.write(path, arcname=path.name)
        return buf.getvalue()

    def file_names(self) -> list[str]:
        """The names a download's zip holds (the card last)."""
        out = Path(f"{self.title}{_SUFFIXES[self.spec.format]}")
        names = ([side_path(out, s).name for s in ("train", "validation")] if self.spec.split is not None
                 else [out.name])
        return [*names, card_path(out).name]

    def cli_command(self) -> str:
        """The `python -m core conversations export` command that writes this export whole, to a file.

        Names the format, status, split, system-prompt policy and the batch / template filter; a
        replacement system prompt is left as a TEXT placeholder (a command is no place for a person's
        text), and a time window or an owner, which the command cannot take, is left out.
        """
        spec = self.spec
        parts = ["python -m core conversations export", f"--out {self.title}{_SUFFIXES[spec.format]}",
                 f"--format {spec.format}"]
        if spec.status != "accepted":
            parts.append(f"--status {spec.status}")
        if spec.split is not None:
            parts.append(f"--split {spec.split:g}")
        if spec.system_prompt != "keep":
            parts.append(f"--system-prompt {spec.system_prompt}")
            if spec.system_prompt == "replace":
                parts.append("--system-text TEXT")
        if self.flt.batch_id:
            parts.append(f"--batch {self.flt.batch_id[:8]}")
        if self.flt.template and _SAFE_WORD.fullmatch(self.flt.template):
            parts.append(f"--template {self.flt.template}")
        return " ".join([*parts, "--card"])

    def status_counts(self) -> dict[str, int]:
        """How many conversations of the filter (any review status) the actor may export, by status."""
        c = conversations.c
        with read_conn(self.engine, actor=self.actor) as conn:
            rows = conn.execute(sa.select(c.review_status, sa.func.count()).where(
                *self.flt.where(), visible(self.actor, Action.EXPORT)).group_by(c.review_status)).all()
        return {r[0]: int(r[1]) for r in rows}

    # -- the card and the audit row ---------------------------------------------------------------

    def _card(self, result: ExportResult) -> str:
        facts = CardFacts(
            title=f"Dataset card: {self.title}", made_at=utcnow(), made_by=self.actor.label, via=self.via,
            format_label=FORMAT_LABELS[self.spec.format], files=[p.name for p in result.files],
            filter={**self.flt.describe(), **self.spec.describe()}, complete=result.complete,
            duplicates_left_out=self._duplicates_left_out(), decisions=self._decisions())
        return render_card(result.stats, facts)

    def _duplicates_left_out(self) -> int:
        """Flagged duplicates the filter matches but the status leaves out (what the quality gate removed)."""
        if self.spec.status == "all":
            return 0
        c = conversations.c
        cond = [*self.flt.where(), visible(self.actor, Action.EXPORT), c.duplicate_of.is_not(None),
                c.review_status != self.spec.status]
        with read_conn(self.engine, actor=self.actor) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(conversations).where(*cond)).scalar_one())

    def _decisions(self) -> list[tuple[str, str, int]]:
        """(reviewer, decision, how many) over the review decisions on the exported conversations."""
        c, d = conversations.c, review_decisions.c
        cond = [*self.flt.where(), *self.spec.conditions(), visible(self.actor, Action.EXPORT)]
        with read_conn(self.engine, actor=self.actor) as conn:
            rows = conn.execute(sa.select(d.reviewer_id, d.decision, sa.func.count())
                                .select_from(review_decisions.join(conversations, c.id == d.conversation_id))
                                .where(*cond).group_by(d.reviewer_id, d.decision)).all()
        names = names_of(self.engine, (r[0] for r in rows))
        named = [(names.get(r[0] or "", "the system" if r[0] is None else r[0][:8]), r[1], int(r[2])) for r in rows]
        return sorted(named, key=lambda t: (-t[2], t[0], t[1]))

    def _audit(self, result: ExportResult) -> None:
        detail = {**self.spec.describe(), "filter": self.flt.describe(), "rows": result.total,
                  "complete": result.complete, "via": self.via}
        if self.spec.split is not None:
            detail["sides"] = dict(result.rows)

        def _write() -> None:
            with write_tx(self.engine, actor=self.actor) as conn:
                audit(conn, AuditAction.EXPORT_CONVERSATIONS, "conversations", None, detail, actor=self.actor)

        run_db(_write)


def _read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def _parquet(jsonl: Path, out: Path, scratch: Path) -> None:
    """The Hugging Face dataset of the rows in `jsonl`, built in chunks from the file, saved as Parquet at `out`."""
    # the app sends nothing anywhere it was not asked to: no Hub look-ups, no usage statistics
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(name, "1")
    import datasets  # heavy (pyarrow, pandas): only an hf export pays for it

    datasets.disable_progress_bars()
    features = datasets.Features({
        "id": datasets.Value("string"),
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "template": datasets.Value("string"), "template_version": datasets.Value("int32"),
        "model": datasets.Value("string"), "persona": datasets.Value("string"), "emotion": datasets.Value("string"),
        "topic": datasets.Value("string"), "review_status": datasets.Value("string"),
        "quality_score": datasets.Value("int32")})
    if jsonl.stat().st_size == 0:  # from_generator refuses an empty generator
        ds = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    else:
        # a fresh fingerprint and cache folder: never a cached dataset of an earlier export
        ds = datasets.Dataset.from_generator(_read_jsonl, features=features, cache_dir=str(scratch / "cache"),
                                             gen_kwargs={"path": str(jsonl)}, fingerprint=uuid.uuid4().hex)
    ds.to_parquet(str(out))
