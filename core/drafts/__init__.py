"""Drafts: autosave of in-progress single generations and resume by assistant prefill."""

from core.drafts.session import (
    DraftSession,
    discard_draft,
    get_draft,
    list_unfinished_drafts,
    resume_draft,
    split_turns,
    start_draft,
    unfinished_drafts_page,
)

__all__ = ["DraftSession", "discard_draft", "get_draft", "list_unfinished_drafts", "resume_draft", "split_turns",
           "start_draft", "unfinished_drafts_page"]
