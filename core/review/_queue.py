"""The review queue: conversations by review state, oldest first, filtered and paged on the server.

Only what the actor may review is listed (core.auth.permissions: reviewers and admins reach every
conversation, anyone else none), so an analyst's queue is empty and an id answers "not found".
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth import Action, Actor, Kind, current_actor, where
from core.conversations import missing
from core.errors import ErrorCode, NotFoundError, ValidationError
from core.store.dialect import json_array_has
from core.store.paging import Page
from core.store.schema import conversations
from core.store.tx import read_conn

__all__ = ["STATUSES", "ReviewFilter", "Status", "failed_checks", "review_item", "review_page", "reviewable"]

Status = Literal["needs_review", "accepted", "rejected", "all"]
STATUSES: tuple[str, ...] = ("needs_review", "accepted", "rejected", "all")
_PAGE_SIZE_MAX = 1_000
_c = conversations.c
# the queue's order: oldest first, the id breaking ties (the index ix_conversations_review serves it)
ORDER = (_c.created_at, _c.id)
# every column but the MinHash signature (bytes nobody reads here)
_COLUMNS = [col for col in conversations.c if col.name != "minhash"]


@dataclass(frozen=True)
class ReviewFilter:
    """Which conversations to review: a review state (default the queue), a batch, template, failed check, score."""

    status: Status = "needs_review"
    batch_id: str | None = None
    template: str | None = None
    failed_check: str | None = None  # a check's name: only conversations that failed it
    min_score: int | None = None  # quality_score from 0 to 100, both ends included; unscored rows drop out
    max_score: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise _invalid("status", f"There is no review status {str(self.status)[:40]!r}; choose one of: "
                                     f"{', '.join(STATUSES)}.")
        for name in ("min_score", "max_score"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise _invalid(name, "A score is a whole number from 0 to 100.", ErrorCode.OUT_OF_RANGE)
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise _invalid("min_score", "The lowest score is above the highest.", ErrorCode.OUT_OF_RANGE)

    def where(self, bind: Connection | Engine) -> list[sa.ColumnElement[bool]]:
        cond: list[sa.ColumnElement[bool]] = []
        if self.status != "all":
            cond.append(_c.review_status == self.status)
        if self.batch_id:
            cond.append(_c.batch_id == self.batch_id)
        if self.template:
            cond.append(_c.template == self.template)
        if self.failed_check:
            cond.append(json_array_has(bind, _c.checks, {"name": self.failed_check, "passed": False}))
        if self.min_score is not None:
            cond.append(_c.quality_score >= self.min_score)
        if self.max_score is not None:
            cond.append(_c.quality_score <= self.max_score)
        return cond

    def describe(self) -> dict[str, Any]:
        """The fields that are set, as plain values (a checkpoint's parameters, an audit row's "filter")."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_described(cls, described: dict[str, Any]) -> ReviewFilter:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in described.items() if k in known})


def _invalid(field: str, message: str, code: ErrorCode = ErrorCode.INVALID_INPUT) -> ValidationError:
    return ValidationError(message, code=code, field=field, user_message=message)


def reviewable(actor: Actor) -> sa.ColumnElement[bool]:
    """The rows `actor` may review (the permissions module's condition)."""
    return where(actor, Action.REVIEW, Kind.CONVERSATION, _c.owner_id)


def failed_checks(row: Any) -> list[str]:
    """The names of the checks a conversation failed, in the order they ran."""
    return [str(c.get("name")) for c in (row["checks"] or []) if isinstance(c, dict) and not c.get("passed", True)]


def _shaped(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["failed_checks"] = failed_checks(row)
    return out


def review_page(engine: Engine, flt: ReviewFilter | None = None, page: int = 1, page_size: int = 50) -> Page:
    """One page of the conversations to review (oldest first) and how many match, paged on the server.

    Each row is the conversation (without its MinHash signature) with `failed_checks` added.
    """
    flt = flt or ReviewFilter()
    page, page_size = max(1, int(page)), max(1, min(int(page_size), _PAGE_SIZE_MAX))
    actor = current_actor(engine)
    with read_conn(engine, actor=actor) as conn:
        cond = [*flt.where(conn), reviewable(actor)]
        total = conn.execute(sa.select(sa.func.count()).select_from(conversations).where(*cond)).scalar_one()
        rows = conn.execute(sa.select(*_COLUMNS).where(*cond).order_by(*ORDER)
                            .limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([_shaped(r) for r in rows], int(total), page, page_size)


def review_item(engine: Engine, conversation_id: str) -> dict[str, Any]:
    """One conversation to review, as `review_page` shapes it; NotFoundError if the actor may not review it."""
    actor = current_actor(engine)
    with read_conn(engine, actor=actor) as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(_c.id == conversation_id, reviewable(actor))).mappings().first()
    if row is None:
        raise NotFoundError(missing(conversation_id), user_message=missing(conversation_id), field="conversation")
    return _shaped(row)
