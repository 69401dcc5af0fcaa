"""The quality gate where a conversation is committed: checks, score, duplicates, routing, stored columns.

`assess()` is pure (checks, score, hash, signature); `find_duplicate()` looks in the store (exact:
the content hash, among the accepted set and the same batch) and in the process's index (near:
MinHash); `route()` decides; `gate_values()` is what goes into the conversation row. The batch
commit (core.batches.checkpoints) calls them inside its one transaction; the single save
(core.drafts.session) looks for duplicates as the system just before its own (its owner may not
see the whole accepted set); `recheck()` runs them over rows saved before (quality_score NULL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import system_actor
from core.config import Settings, get_settings
from core.errors import ValidationError
from core.quality.checks import CheckResult, check_conversation
from core.quality.fingerprint import (
    content_hash,
    conversation_text,
    normalise,
    shared_passage,
    signature,
    signature_bytes,
)
from core.quality.index import NearDuplicateIndex
from core.quality.score import Score, score
from core.redact import redact_cut
from core.resilience import run_db
from core.store.schema import conversations
from core.store.tx import read_conn, write_tx

__all__ = ["ACCEPTED", "NEEDS_REVIEW", "REGENERATE", "REJECTED", "Assessment", "Duplicate", "assess",
           "find_duplicate", "gate_values", "judge_wanted", "recheck", "route", "template_content",
           "thresholds"]

ACCEPTED, NEEDS_REVIEW, REGENERATE, REJECTED = "accepted", "needs_review", "regenerate", "rejected"
_c = conversations.c


@dataclass(frozen=True)
class Assessment:
    """What the checks say about one conversation, and its fingerprints."""

    checks: list[CheckResult]
    score: Score
    content_hash: str
    signature: np.ndarray
    text: str  # the messages' content (the shared passage is cut from it)

    @property
    def failed_hard(self) -> list[CheckResult]:
        return [c for c in self.checks if c.hard and not c.passed]


@dataclass(frozen=True)
class Duplicate:
    """The earlier conversation this one duplicates: exact (same normalised text) or near (MinHash)."""

    conversation_id: str
    kind: str  # exact|near
    similarity: float
    passage: str  # the longest passage they share, redacted and cut


def assess(turns: Sequence[Mapping[str, Any]], params: Mapping[str, Any], settings: Settings | None = None
           ) -> Assessment:
    """Checks, score, content hash and MinHash signature of one conversation (no store)."""
    s = settings or get_settings()
    checks = check_conversation(turns, params, s)
    text = conversation_text(turns)
    norm = normalise(text)
    return Assessment(checks, score(checks), content_hash(norm),
                      signature(norm, num_perm=s.quality_minhash_perms, shingle_words=s.quality_shingle_words),
                      text)


def _in_scope(batch_id: str | None) -> sa.ColumnElement[bool]:
    accepted = _c.review_status == ACCEPTED
    return sa.or_(accepted, _c.batch_id == batch_id) if batch_id is not None else accepted


# the advisory-lock space of exact-duplicate checks (two-key form; the migration lock uses the one-key form)
_DUPLICATE_LOCK_SPACE = 7202


def _hold_hash(conn: Connection, content_hash: str) -> None:
    """On Postgres, hold this text's hash until the transaction ends: two commits of the same text in
    parallel then run one after the other, so the second sees the first and is flagged its duplicate.

    SQLite needs nothing: its writers run one at a time already.
    """
    if conn.dialect.name == "postgresql":
        key = int(content_hash[:8], 16) - 2**31  # a signed 32-bit key; another hash sharing it only waits
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
                     {"space": _DUPLICATE_LOCK_SPACE, "key": key})


def find_duplicate(conn: Connection, assessment: Assessment, *, batch_id: str | None,
                   index: NearDuplicateIndex | None, exclude_id: str | None = None,
                   settings: Settings | None = None) -> Duplicate | None:
    """The earliest exact duplicate in the store, else the nearest near-duplicate the index holds; or None.

    Compared with the accepted set and with the conversations of the same batch (`batch_id`).
    """
    s = settings or get_settings()
    _hold_hash(conn, assessment.content_hash)
    query = sa.select(_c.id, _c.turns).where(_c.content_hash == assessment.content_hash, _in_scope(batch_id))
    if exclude_id is not None:
        query = query.where(_c.id != exclude_id)
    exact = conn.execute(query.order_by(_c.created_at, _c.id).limit(1)).first()
    if exact is not None:
        return Duplicate(str(exact.id), "exact", 1.0, redact_cut(" ".join(assessment.text.split()),
                                                                  s.quality_passage_max_chars))
    match = index.nearest(assessment.signature, batch_id=batch_id, exclude=exclude_id) if index is not None else None
    if match is None:
        return None
    other = conn.execute(sa.select(_c.turns).where(_c.id == match.conversation_id)).scalar()
    if other is None:
        return None  # removed meanwhile
    passage = shared_passage(assessment.text, conversation_text(other), max_chars=s.quality_passage_max_chars)
    return Duplicate(match.conversation_id, "near", round(match.similarity, 4), passage)


def template_content(params: Mapping[str, Any], engine: Engine | None) -> Any:
    """The TemplateContent of the version these params name, or None (no template, or an unknown one).

    A version is immutable and read once per process (core.templates.resolve): a dictionary lookup
    per conversation after the first. A store outage is raised, for the caller's retry.
    """
    name = params.get("template")
    if not name or engine is None:
        return None
    from core.templates.store import resolve  # the store's services import the gate's callers: when used

    try:
        return resolve(str(name), params.get("template_version"), engine=engine).content
    except ValidationError:  # an unknown template
        return None


def thresholds(params: Mapping[str, Any], engine: Engine | None = None, settings: Settings | None = None
               ) -> tuple[int, int]:
    """(accept, review) scores for a conversation of these params: its template version's, else the settings'."""
    s = settings or get_settings()
    accept, review = s.quality_accept_score, s.quality_review_score
    content = template_content(params, engine)
    if content is not None:
        accept = content.quality_accept if content.quality_accept is not None else accept
        review = content.quality_review if content.quality_review is not None else review
    return accept, min(review, accept)


def judge_wanted(params: Mapping[str, Any], engine: Engine | None) -> bool:
    """Whether the template version these params name asks for the LLM judge (off by default)."""
    content = template_content(params, engine)
    return bool(content is not None and content.judge)


def route(assessment: Assessment, duplicate: Duplicate | None, settings: Settings | None = None, *,
          accept: int | None = None, review: int | None = None) -> str:
    """accepted (score at or above `accept`), needs_review (from `review`), regenerate (below, or a hard fail).

    `accept` / `review`: a template's own scores (see `thresholds`); None: the settings'. A
    duplicate is never accepted: at best it waits for a reviewer, who sees what it duplicates.
    """
    s = settings or get_settings()
    accept = s.quality_accept_score if accept is None else accept
    review = s.quality_review_score if review is None else review
    total = assessment.score.total
    if assessment.failed_hard or total < review:
        return REGENERATE
    if total >= accept and duplicate is None:
        return ACCEPTED
    return NEEDS_REVIEW


def gate_values(assessment: Assessment, duplicate: Duplicate | None, status: str,
                settings: Settings | None = None) -> dict[str, Any]:
    """The quality columns of the conversation row (details redacted, then cut)."""
    s = settings or get_settings()
    limit = s.stored_reason_max_chars
    return {
        "review_status": status,
        "quality_score": assessment.score.total,
        "checks": [{**c.to_json(), "detail": redact_cut(c.detail, limit) if c.detail else ""}
                   for c in assessment.checks],
        "score_parts": assessment.score.parts,
        "content_hash": assessment.content_hash,
        "minhash": signature_bytes(assessment.signature),
        "duplicate_of": duplicate.conversation_id if duplicate else None,
        "duplicate_kind": duplicate.kind if duplicate else None,
        "duplicate_similarity": duplicate.similarity if duplicate else None,
        "duplicate_passage": duplicate.passage if duplicate else None,
    }


def _scores(params: Mapping[str, Any], engine: Engine, s: Settings) -> dict[str, int]:
    accept, review = thresholds(params, engine, s)
    return {"accept": accept, "review": review}


def recheck(engine: Engine, batch_id: str | None = None, *, only_unchecked: bool = True) -> int:
    """Check, score, fingerprint and route stored conversations again (oldest first); how many were written.

    `only_unchecked`: only rows never checked (quality_score NULL, e.g. saved before the gate existed).
    A row a reviewer decided on keeps its review status; the others take the route's, where
    "regenerate" becomes needs_review (a stored conversation is not generated again). Runs as the
    system, in chunks of settings.quality_index_chunk_rows, each chunk one transaction.
    """
    from core.quality.shared import shared_index  # the index reads review decisions; imported where used

    s = get_settings()
    system = system_actor()
    where: list[sa.ColumnElement[bool]] = []
    if batch_id is not None:
        where.append(_c.batch_id == batch_id)
    if only_unchecked:
        where.append(_c.quality_score.is_(None))
    store_index = shared_index(engine)
    written = 0
    after: tuple[Any, str] | None = None
    while True:
        query = sa.select(_c.id, _c.batch_id, _c.params, _c.turns, _c.review_status, _c.reviewed_by,
                          _c.created_at).where(*where)
        if after is not None:
            query = query.where(sa.tuple_(_c.created_at, _c.id) > sa.tuple_(*after))
        with read_conn(engine, actor=system) as conn:
            rows = conn.execute(query.order_by(_c.created_at, _c.id).limit(s.quality_index_chunk_rows)).all()
        if not rows:
            return written

        def _write(chunk: Sequence[Any] = rows) -> None:
            with write_tx(engine, actor=system) as conn:
                for row in chunk:
                    index = store_index.prepare(row.batch_id)
                    found = assess(row.turns or [], row.params or {}, s)
                    dup = find_duplicate(conn, found, batch_id=row.batch_id, index=index, exclude_id=row.id,
                                         settings=s)
                    status = route(found, dup, s, **_scores(row.params or {}, engine, s))
                    if row.reviewed_by is not None or row.review_status == REJECTED:
                        status = row.review_status  # a person's decision stands
                    elif status == REGENERATE:
                        status = NEEDS_REVIEW
                    conn.execute(conversations.update().where(_c.id == row.id).values(
                        **gate_values(found, dup, status, s)))
                    # at once: the next rows of this chunk compare with it (the row exists either way)
                    index.add(row.id, found.signature, accepted=status == ACCEPTED, batch_id=row.batch_id)

        run_db(_write)
        written += len(rows)
        after = (rows[-1].created_at, rows[-1].id)
