"""Rows the app tests insert directly (a conversation, a critical error), the text a Markdown value shows, and the
steps several app tests take (select a grid row, open the error groups)."""

from __future__ import annotations

import re
import uuid

from core.store.schema import conversations, error_logs, utcnow


def insert_conversation(engine, *, batch_id: str | None = None, item_index: int | None = None,
                        draft_id: str | None = None) -> str:
    cid = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(conversations.insert().values(
            id=cid, batch_id=batch_id, item_index=item_index, draft_id=draft_id, template="customer_support",
            model="claude-sonnet-5-5",
            params={"persona": "a new customer", "emotion": "curious", "topic": "billing", "turns": 2},
            system_prompt="You write training conversations.",
            turns=[{"role": "user", "content": "Why was I billed twice?"},
                   {"role": "assistant", "content": "Let me check that for you."}],
            turn_count=2, input_tokens=100, output_tokens=50, cost_usd=0.001, status="ok", created_by="analyst",
            created_at=utcnow()))
    return cid


def insert_critical_error(engine) -> str:
    error_id = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(error_logs.insert().values(
            error_id=error_id, created_at=utcnow(), error_type="api", error_code="authentication_failed",
            severity="critical", message="401", user_message="The Anthropic API key was rejected.",
            fingerprint="c" * 32, component="test", is_recoverable=False, recovered=False, resolved=False))
    return error_id


_ESCAPE = re.compile(r"""\\([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def shown(markdown: str) -> str:
    """The text a Markdown string shows once its backslash escapes (core.ui.safe.literal) are read."""
    return _ESCAPE.sub(r"\1", str(markdown)).replace("\u00a0", " ").replace("\u2060", "").replace("  \n", "\n")


def listed(at) -> list:
    """The Conversations page's list grid (0 or 1 of them): not the dataset-health coverage table below it."""
    return [d for d in at.dataframe if (d.key or "").startswith("conversations.rows")]


def select_row(at, position: int, table: int = 0) -> None:
    """Select the grid's row at `position` as a click in the browser would, and rerun."""
    at.session_state[at.dataframe[table].key] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    at.run()


def open_groups(open_page):
    """The Errors page on its "Groups by fingerprint" tab."""
    at = open_page("errors")
    at.session_state["errors.tabs"] = "Groups by fingerprint"
    at.run()
    assert not at.exception
    return at


def open_export(open_page):
    """The Conversations page with its "Export a dataset" expander open (the export is drawn only while it is)."""
    at = open_page("conversations")
    at.session_state["export.open"] = True
    at.run()
    assert not at.exception
    return at
