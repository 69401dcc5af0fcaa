"""Draft autosave and resume for single generations, independent of any UI.

A `DraftSession` holds one in-progress generation: its parameters, the text streamed so
far, the turns finished so far, a status and a progress fraction. Feed it every streamed
piece with `on_delta(text)`: it saves to `conversation_drafts` when
settings.autosave_interval_s has passed since the last save, and whenever a new
`User:`/`Assistant:` block starts (the one before it is then complete). So killing the
server or closing the tab loses at most those seconds.

`run()` generates (continuing from the saved text by assistant prefill, never starting
over) and `finish()` writes the conversation and marks the draft completed in one
transaction. Pages keep the session object in session state and wire it to widgets.

A draft is its owner's (`user_id`, an app_users id): started as the actor of the running code,
seen, resumed and discarded only by them (or an admin; core.auth.permissions). A draft the actor
may not reach answers as one that does not exist. Its conversation carries the draft owner's id.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from core.auth import Action, Actor, Kind, current_actor, require, where
from core.auth.actor import system_actor
from core.config import get_settings
from core.errorlog import record
from core.errors import AppError, ErrorCode, NotFoundError, ValidationError, classify, without_promise
from core.generation import GenerationParams, GenerationResult, validate_params
from core.generation.service import agenerate_conversation
from core.quality import (
    ACCEPTED,
    NEEDS_REVIEW,
    REGENERATE,
    Judgement,
    ajudge,
    assess,
    find_duplicate,
    gate_values,
    judge_wanted,
    route,
    shared_index,
    thresholds,
)
from core.redact import redact_text
from core.resilience import run_db
from core.store.paging import Page
from core.store.schema import conversation_drafts, conversations, utcnow
from core.store.tx import read_conn, write_tx

__all__ = ["DraftSession", "discard_draft", "get_draft", "list_unfinished_drafts", "resume_draft", "start_draft",
           "unfinished_drafts_page"]

_BLOCK = re.compile(r"(?m)^(User|Assistant):")
UNFINISHED = ("in_progress", "failed")


# what a draft stopped by an error says after the error itself
DRAFT_KEPT = "The generation stopped; the text so far is kept, and Resume continues from it."
# what an unknown draft gets, and one the actor may not reach (they answer alike)
DRAFT_MISSING = "This draft no longer exists (it may have expired or been discarded)."
_SIGN_IN = "Sign in to generate a conversation."


def _reachable(actor: Actor, action: Action) -> sa.ColumnElement[bool]:
    return where(actor, action, Kind.DRAFT, conversation_drafts.c.user_id)


def _missing(draft_id: str) -> NotFoundError:
    return NotFoundError(f"There is no draft with id {draft_id!r} the actor may reach.", code=ErrorCode.UNKNOWN_DRAFT,
                         field="draft", user_message=DRAFT_MISSING)


def _record(err: AppError, *, draft_id: str, step: str) -> None:
    record(err, component="drafts", operation_id=draft_id, context={"step": step})


def split_turns(text: str) -> list[dict[str, str]]:
    """The complete blocks of a partial answer (the last block may still be streaming, so it is left out)."""
    starts = [m for m in _BLOCK.finditer(text)]
    turns: list[dict[str, str]] = []
    for this, nxt in zip(starts, starts[1:], strict=False):
        turns.append({"role": this.group(1).lower(), "content": text[this.end():nxt.start()].strip()})
    return turns


def _expiry(now: datetime) -> datetime:
    return now + timedelta(hours=get_settings().draft_ttl_hours)


@dataclass
class DraftSession:
    """One in-progress generation and its autosave bookkeeping."""

    engine: Engine
    id: str
    owner_id: str  # app_users.id of the person whose draft it is
    params: GenerationParams
    session_id: str | None = None
    partial_text: str = ""
    turns: list[dict[str, str]] = field(default_factory=list)
    status: str = "in_progress"
    progress: float = 0.0
    error_message: str | None = None
    conversation_id: str | None = None
    saved_at: datetime | None = None
    saves: int = 0
    save_error: str | None = None  # why the last autosave failed, until one succeeds
    _saved_mono: float = field(default_factory=time.monotonic, repr=False)
    _blocks: int = field(default=0, repr=False)

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, engine: Engine, params: GenerationParams, *, session_id: str | None = None) -> DraftSession:
        """Validate the parameters and save a new in-progress draft, owned by the actor of the running code."""
        validate_params(params)
        actor = current_actor(engine)
        owner = actor.owner_id
        if owner is None:  # nobody (signed out), or the system acting for no one: no one to own it
            raise NotFoundError("A draft needs an owner.", code=ErrorCode.UNKNOWN_DRAFT, field="draft",
                                user_message=_SIGN_IN)
        require(actor, Action.CREATE, Kind.DRAFT, owner, field="draft", missing=_SIGN_IN)
        draft = cls(engine=engine, id=str(uuid.uuid4()), owner_id=owner, params=params, session_id=session_id)

        def _insert() -> None:
            now = utcnow()
            with write_tx(engine, actor=actor) as conn:
                conn.execute(conversation_drafts.insert().values(
                    id=draft.id, user_id=draft.owner_id, session_id=session_id, template=params.template,
                    params=params.to_dict(), partial_text="", turns=[], status="in_progress", progress=0.0,
                    created_at=now, updated_at=now, expires_at=_expiry(now)))
            draft.saved_at = now

        run_db(_insert)
        draft._saved_mono = time.monotonic()
        return draft

    @classmethod
    def load(cls, engine: Engine, draft_id: str) -> DraftSession:
        """The saved draft `draft_id`, to resume (NotFoundError if there is none the actor may resume)."""
        row = _draft_row(engine, draft_id, Action.ACT)
        known = set(GenerationParams.__dataclass_fields__)
        params = GenerationParams(**{k: v for k, v in (row["params"] or {}).items() if k in known})
        draft = cls(engine=engine, id=row["id"], owner_id=row["user_id"], params=params, session_id=row["session_id"],
                    partial_text=row["partial_text"] or "", turns=list(row["turns"] or []), status=row["status"],
                    progress=float(row["progress"] or 0.0), error_message=row["error_message"],
                    conversation_id=row["conversation_id"], saved_at=row["updated_at"])
        draft._blocks = len(_BLOCK.findall(draft.partial_text))
        return draft

    # ---- streaming -------------------------------------------------------------------------
    def on_delta(self, text: str) -> bool:
        """Append a streamed piece; save if a turn just completed or the autosave interval passed. True if saved."""
        if not text:
            return False
        old_len = len(self.partial_text)
        self.partial_text += text
        # headers completed by this piece (one may straddle two pieces, so look a little back)
        found = sum(1 for m in _BLOCK.finditer(self.partial_text, max(0, old_len - 16)) if m.end() > old_len)
        blocks = self._blocks + found
        new_turn = blocks > self._blocks and blocks > 1
        self._blocks = blocks
        if new_turn or self.seconds_since_save >= get_settings().autosave_interval_s:
            return self._autosave()
        return False

    def _autosave(self) -> bool:
        """Save without stopping the stream: a store outage is recorded and the next save tries again."""
        try:
            self.save()
        except Exception as exc:  # noqa: BLE001 - the text stays in memory; losing the stream would lose more
            err = classify(exc)
            self.save_error = redact_text(err.user_message)
            _record(err, draft_id=self.id, step="autosave")
            return False
        self.save_error = None
        return True

    @property
    def seconds_since_save(self) -> float:
        return time.monotonic() - self._saved_mono

    def _refresh(self) -> None:
        self.turns = split_turns(self.partial_text)
        self.progress = round(min(1.0, len(self.turns) / max(self.params.turns, 1)), 4)

    def save(self) -> None:
        """Write the partial text, finished turns and progress now."""
        self._refresh()
        # stored redacted, as the finished conversation's turns are (core.generation.parse): a resume
        # continues from the redacted text, which is all the model needs to go on
        values = {"partial_text": redact_text(self.partial_text),
                  "turns": [{**t, "content": redact_text(t["content"])} for t in self.turns],
                  "progress": self.progress, "status": self.status, "error_message": self.error_message}

        def _update() -> datetime:
            now = utcnow()
            actor = current_actor(self.engine)
            with write_tx(self.engine, actor=actor) as conn:
                if not conn.execute(conversation_drafts.update().where(
                        conversation_drafts.c.id == self.id, _reachable(actor, Action.ACT)).values(
                        updated_at=now, expires_at=_expiry(now), **values)).rowcount:
                    raise _missing(self.id)  # removed meanwhile, or this thread forgot whose it is
            return now

        self.saved_at = run_db(_update)
        self.saves += 1
        self._saved_mono = time.monotonic()

    # ---- outcome ---------------------------------------------------------------------------
    def finish(self, result: GenerationResult, *, judgement: Judgement | None = None) -> str:
        """Write the conversation (draft_id set) and mark the draft completed, in one transaction.

        It is checked, scored, compared and routed on the way (core.quality); `judgement`, the
        optional LLM judge's, is stored with it.
        """
        conversation_id = str(uuid.uuid4())
        turns = [{"role": t.role, "content": t.content} for t in result.conversation.turns]
        usage = result.usage

        owner_name = _name_of(self.engine, self.owner_id)
        settings = get_settings()
        params = self.params.to_dict()
        assessment = assess(turns, params, settings)  # pure: outside the transaction
        accept, review = thresholds(params, self.engine, settings)
        store_index = shared_index(self.engine)

        def _write() -> str:
            now = utcnow()
            actor = current_actor(self.engine)
            index = store_index.prepare()
            # looked up as the system: the accepted set is everybody's, and the owner may not see it all
            with read_conn(self.engine, actor=system_actor()) as conn:
                duplicate = find_duplicate(conn, assessment, batch_id=None, index=index, settings=settings)
            # a single conversation is not generated again by itself: below the bar, a reviewer decides
            status = route(assessment, duplicate, settings, accept=accept, review=review)
            status = NEEDS_REVIEW if status == REGENERATE else status
            with write_tx(self.engine, actor=actor) as conn:
                # the draft first: one the actor may not write leaves no conversation behind
                if not conn.execute(conversation_drafts.update().where(
                        conversation_drafts.c.id == self.id, _reachable(actor, Action.ACT)).values(
                        status="completed", progress=1.0, partial_text=result.raw_text, turns=turns,
                        conversation_id=conversation_id, error_message=None, updated_at=now,
                        expires_at=_expiry(now))).rowcount:
                    raise _missing(self.id)
                conn.execute(conversations.insert().values(
                    id=conversation_id, batch_id=None, item_index=None, draft_id=self.id,
                    template=self.params.template, model=result.llm.model or self.params.model or "",
                    params=params, system_prompt=result.conversation.system_prompt, turns=turns,
                    turn_count=len(turns), input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                    cost_usd=result.cost_usd, mode=result.mode, cache_read_tokens=usage.cache_read_input_tokens,
                    cache_creation_tokens=usage.cache_creation_input_tokens,
                    status="ok", owner_id=self.owner_id, created_by=owner_name,
                    created_at=now, error_count=result.invalid_attempts, is_recovering=False, recovery_attempts=0,
                    judge=judgement.to_json() if judgement else None,
                    judge_status=judgement.status if judgement else None,
                    judge_cost_usd=judgement.cost_usd if judgement else 0.0,
                    **gate_values(assessment, duplicate, status, settings)))
            return status

        status = run_db(_write)
        store_index.index.add(conversation_id, assessment.signature, accepted=status == ACCEPTED, batch_id=None)
        self.status, self.progress, self.conversation_id = "completed", 1.0, conversation_id
        self.partial_text, self.turns = result.raw_text, turns
        return conversation_id

    def fail(self, error: BaseException) -> None:
        """Keep what was streamed and say why it stopped; the draft stays resumable."""
        err = error if isinstance(error, AppError) else classify(error)
        partial = getattr(err, "partial_text", None)
        if partial and len(partial) > len(self.partial_text) and partial.startswith(self.partial_text.rstrip()):
            self.partial_text = partial
        # shown on the page before it is stored (where the column redacts it again)
        # nothing retries a stopped draft: its message must not promise another attempt
        self.status = "failed"
        self.error_message = redact_text(f"{without_promise(err.user_message)} {DRAFT_KEPT}")
        self.save()

    def drop_if_empty(self) -> bool:
        """Discard this draft if no turn of it is finished (0 %: nothing worth resuming); True if dropped."""
        self._refresh()
        if self.progress > 0 or self.status == "completed":
            return False
        discard_draft(self.engine, self.id)
        self.status = "discarded"
        return True

    def run(self, *, client: Any = None, on_delta: Callable[[str], None] | None = None) -> GenerationResult:
        """Generate (continuing the saved text by prefill), autosaving as it streams; finish on success."""
        from core.llm.loops import run_sync  # imports the SDK: only when a draft generates

        if self.status == "completed":
            raise ValidationError("This draft is already finished.", code=ErrorCode.DRAFT_FINISHED, field="draft",
                                  user_message="This draft is already finished; open its conversation instead.")
        # the API refuses a prefill ending in whitespace; the model writes that whitespace again
        self.partial_text = self.partial_text.rstrip()
        self._blocks = len(_BLOCK.findall(self.partial_text))
        if self.status != "in_progress":
            self.status, self.error_message = "in_progress", None
            self.save()

        def _delta(text: str) -> None:
            self.on_delta(text)
            if on_delta is not None:
                on_delta(text)

        try:
            result = run_sync(agenerate_conversation(self.params, client=client, on_delta=_delta,
                                                     prefill=self.partial_text, component="drafts",
                                                     operation_id=self.id))
        except Exception as exc:
            try:
                self.fail(exc)
            except Exception as save_exc:  # noqa: BLE001 - keep the generation's error; the store's is recorded
                _record(classify(save_exc), draft_id=self.id, step="save_failure")
            raise
        self.finish(result, judgement=self._judge(result, client))
        return result

    def _judge(self, result: GenerationResult, client: Any) -> Judgement | None:
        """The optional LLM judge's judgement when the template version asks for it; never fails the draft."""
        from core.llm.loops import run_sync

        params = self.params.to_dict()
        try:
            wanted = judge_wanted(params, self.engine)
        except Exception as exc:  # noqa: BLE001 - the judge is optional; the conversation is saved without it
            _record(classify(exc), draft_id=self.id, step="judge")
            return None
        if not wanted:
            return None
        turns = [{"role": t.role, "content": t.content} for t in result.conversation.turns]
        return run_sync(ajudge(turns, params, client=client, operation_id=self.id))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "owner_id": self.owner_id, "params": self.params.to_dict(), "partial_text": self.partial_text,
                "turns": self.turns, "status": self.status, "progress": self.progress,
                "error_message": self.error_message, "conversation_id": self.conversation_id,
                "save_error": self.save_error,
                "saved_at": self.saved_at.isoformat() if self.saved_at else None}


# ---- module functions the pages call ---------------------------------------------------------


def _name_of(engine: Engine, user_id: str) -> str | None:
    """The owner's display name, kept on the conversation for showing (the id is what counts)."""
    from core.auth.users import names_of  # users imports the store's services; drafts load before them

    return names_of(engine, [user_id]).get(user_id)


def start_draft(engine: Engine, params: GenerationParams, *, session_id: str | None = None) -> DraftSession:
    return DraftSession.start(engine, params, session_id=session_id)


def _draft_row(engine: Engine, draft_id: str, action: Action) -> dict[str, Any]:
    actor = current_actor(engine)
    with read_conn(engine, actor=actor) as conn:
        row = conn.execute(sa.select(conversation_drafts).where(
            conversation_drafts.c.id == draft_id, _reachable(actor, action))).mappings().first()
    if row is None:
        raise _missing(draft_id)
    return dict(row)


def get_draft(engine: Engine, draft_id: str) -> dict[str, Any]:
    """The saved draft `draft_id` (NotFoundError if there is none the actor may see)."""
    return _draft_row(engine, draft_id, Action.VIEW)


def list_unfinished_drafts(engine: Engine, *, everyone: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """The actor's in-progress and failed drafts, most recently saved first (`everyone`: all the actor may see)."""
    return unfinished_drafts_page(engine, everyone=everyone, page_size=limit).rows


def unfinished_drafts_page(engine: Engine, *, everyone: bool = False, page: int = 1, page_size: int = 50,
                           exclude: str | None = None) -> Page:
    """Page `page` of the actor's in-progress and failed drafts (but `exclude`), latest saved first; all counted.

    `everyone`: every unfinished draft the actor may see (an admin's are everybody's).
    """
    page, page_size = max(1, int(page)), max(1, int(page_size))
    actor = current_actor(engine)
    d = conversation_drafts.c
    where = [d.status.in_(UNFINISHED), _reachable(actor, Action.VIEW)] + ([d.id != exclude] if exclude else [])
    if not everyone:
        where.append(d.user_id == actor.user_id if actor.user_id else sa.false())
    cols = [d[name] for name in ("id", "user_id", "template", "params", "status", "progress", "error_message",
                                 "created_at", "updated_at", "expires_at")]
    with read_conn(engine, actor=actor) as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(conversation_drafts).where(*where))
                    .scalar_one())
        rows = conn.execute(sa.select(*cols, sa.func.length(d.partial_text).label("chars")).where(*where)
                            .order_by(d.updated_at.desc(), d.id).limit(page_size)
                            .offset((page - 1) * page_size)).mappings().all()
    return Page([dict(r) for r in rows], total, page, page_size)


def discard_draft(engine: Engine, draft_id: str) -> bool:
    """Mark an unfinished draft discarded (the cleanup job removes it later); False if it was not unfinished.

    NotFoundError if there is no such draft the actor may discard.
    """
    actor = current_actor(engine)

    def _write() -> bool:
        d = conversation_drafts.c
        with write_tx(engine, actor=actor) as conn:
            status = conn.execute(sa.select(d.status).where(d.id == draft_id, _reachable(actor, Action.ACT))
                                  ).scalar()
            if status is None:
                raise _missing(draft_id)
            return conn.execute(conversation_drafts.update().where(
                d.id == draft_id, d.status.in_(UNFINISHED), _reachable(actor, Action.ACT)).values(
                status="discarded", updated_at=utcnow())).rowcount == 1

    return run_db(_write)


def resume_draft(engine: Engine, draft_id: str, *, on_delta: Callable[[str], None] | None = None,
                 client: Any = None) -> GenerationResult:
    """Continue a saved draft from its partial text (assistant prefill) to a finished conversation."""
    return DraftSession.load(engine, draft_id).run(client=client, on_delta=on_delta)
