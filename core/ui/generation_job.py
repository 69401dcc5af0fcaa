"""A single generation running on a thread of its own, so the page can poll it.

The page's script thread cannot watch a model call that is waiting between retries, so the
call runs here and the page polls: the text streamed so far, the draft's last autosave, and
the failed attempts the client recorded for this draft (by its id, from the error ring).
The page's live fragment marks the job watched each time it polls; a job nobody has watched
for settings.ui_generation_unwatched_s (the tab was closed) cancels itself: the thread stops
at its next streamed piece and the draft stays in progress, offered for resume.

A running job is also registered by its draft in this process, so one draft never has two
writers: a page that opens after a reload (a new session) takes over its user's running job
and shows it live, and "Resume" on a draft that is still being written joins that job. A
person runs one job at a time: starting another while one of theirs writes is refused.

The thread acts as the person who started the job (the actor of the page run that started it),
so what it saves is theirs and, on Postgres, passes Row Level Security as them; a thread left
with the process default would act as nobody once sign-in is configured.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from core.auth import Actor, acting_as, current_actor
from core.config import get_settings
from core.drafts import DraftSession
from core.errorlog import recent, record
from core.errors import AppError, ErrorCode, ValidationError, classify

__all__ = ["GenerationCancelled", "GenerationJob", "attempt_failures", "job_for", "running_job_of"]

_RUNNING: dict[str, GenerationJob] = {}  # draft id -> the job writing it, in this process
_RUNNING_LOCK = threading.RLock()  # job_for checks and starts under it


class GenerationCancelled(BaseException):  # noqa: N818 - control flow, like KeyboardInterrupt
    """Raised inside the stream when the page that started it has gone; never retried or recorded."""


@dataclass
class GenerationJob:
    draft: DraftSession
    text: str = ""
    done: bool = False
    cancelled: bool = False
    result: Any = None
    error: AppError | None = None
    reported: bool = False  # the page has shown the error once
    toasted_failures: int = 0  # failed attempts the page has already raised a toast for
    stopped: bool = False  # cancelled by Stop, not because the page went away (that draft is left as it is)
    actor: Actor | None = None  # who started it: the thread acts as them (set by start())
    _seen: float = field(default_factory=time.monotonic, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> GenerationJob:
        self.text = self.draft.partial_text
        # the thread writes the draft as the person who started it (a new thread has no actor of its own)
        self.actor = actor = self.actor or current_actor(self.draft.engine)
        self._thread = threading.Thread(target=self._run_as, args=(actor,), name=f"generate-{self.draft.id[:8]}",
                                        daemon=True)
        with _RUNNING_LOCK:
            _RUNNING[self.draft.id] = self
        self._thread.start()
        return self

    @property
    def person(self) -> str | None:
        """The id of the person who started it."""
        return self.actor.user_id if self.actor is not None else None

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self) -> None:
        """A person's Stop: cancel, then keep the text written so far (saved at once) or drop an empty draft."""
        self.stopped = True
        self._cancel.set()

    def watched(self) -> None:
        """The page is still showing this job (called on each poll)."""
        self._seen = time.monotonic()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _delta(self, piece: str) -> None:
        if time.monotonic() - self._seen > get_settings().ui_generation_unwatched_s:
            self._cancel.set()
        if self._cancel.is_set():
            raise GenerationCancelled
        self.text += piece

    def _run_as(self, actor: Actor) -> None:
        with acting_as(actor):
            self._run()

    def _run(self) -> None:
        try:
            self.result = self.draft.run(on_delta=self._delta)
        except GenerationCancelled:
            self.cancelled = True
            if self.stopped:
                self._settle(keep=self.draft.save)
        except Exception as exc:  # noqa: BLE001 - the draft recorded and kept it; the page shows it
            self.error = classify(exc)
            self._settle(keep=lambda: None)
        finally:
            self.done = True
            with _RUNNING_LOCK:
                if _RUNNING.get(self.draft.id) is self:
                    del _RUNNING[self.draft.id]

    def _settle(self, keep: Any) -> None:
        """A stopped draft keeps its text (saved now, not at the last autosave); an empty (0 %) one is dropped."""
        try:
            if not self.draft.drop_if_empty():
                keep()
        except Exception as exc:  # noqa: BLE001 - the last autosave stands; the store's error is recorded
            record(classify(exc), component="ui.generate", operation_id=self.draft.id, context={"step": "settle"})


def attempt_failures(draft_id: str) -> list[dict[str, Any]]:
    """Failed attempts the client recorded for this draft, oldest first (from the in-memory ring)."""
    rows = [r for r in recent(100) if r.get("operation_id") == draft_id and not r.get("recovered")]
    return list(reversed(rows))


def job_for(draft: DraftSession) -> GenerationJob:
    """The job writing `draft`: the one already running in this process, else a new one, started as the actor.

    Refused (ValidationError) while another job of the same person is still writing.
    """
    actor = current_actor(draft.engine)
    with _RUNNING_LOCK:
        running = _RUNNING.get(draft.id)
        if running is None and actor.user_id is not None and _running_of(actor.user_id) is not None:
            raise ValidationError("Another generation of this person is still running.",
                                  code=ErrorCode.GENERATION_RUNNING, field="draft",
                                  user_message="You already have a generation running: stop it or let it "
                                               "finish, then start this one.")
        # started under the lock: two tabs starting at once cannot both pass the check above
        return running if running is not None else GenerationJob(draft, actor=actor).start()


def _running_of(user_id: str) -> GenerationJob | None:
    jobs = [job for job in _RUNNING.values() if job.person == user_id and not job.done]
    return jobs[-1] if jobs else None


def running_job_of(user_id: str | None) -> GenerationJob | None:
    """The job still writing that the person `user_id` (an app_users id) started in this process, if any."""
    if user_id is None:
        return None
    with _RUNNING_LOCK:
        return _running_of(user_id)
