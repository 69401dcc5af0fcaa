"""Fixtures for the app tests: a seeded store and an AppTest of the real entrypoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from core.config import ROOT, reload_settings
from core.store.schema import conversations, utcnow

APP_TIMEOUT_S = 60  # the first run imports plotly, pandas and the SDK


@pytest.fixture
def app_env(monkeypatch) -> None:
    """No background worker (tests drive batches themselves); retries stay instant."""
    monkeypatch.setenv("STUDIO_UI_BACKGROUND_WORKER", "false")
    monkeypatch.setenv("STUDIO_ALERT_POLL_INTERVAL_S", "3600")
    reload_settings()


def insert_conversation(engine, *, batch_id: str | None = None, item_index: int | None = None) -> str:
    cid = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(conversations.insert().values(
            id=cid, batch_id=batch_id, item_index=item_index, template="customer_support", model="claude-sonnet-5-5",
            params={"persona": "a new customer", "emotion": "curious", "topic": "billing", "turns": 2},
            system_prompt="You write training conversations.",
            turns=[{"role": "user", "content": "Why was I billed twice?"},
                   {"role": "assistant", "content": "Let me check that for you."}],
            turn_count=2, input_tokens=100, output_tokens=50, cost_usd=0.001, status="ok", created_by="analyst",
            created_at=utcnow()))
    return cid


@pytest.fixture
def seeded(engine, app_env) -> dict:
    """200 synthetic error rows, one 3-item batch and one conversation."""
    from core.batches import service
    from core.errorlog.seed import seed_errors
    from core.generation import template_names

    seed_errors(engine, 200, days=2)
    template = template_names()[0]
    batch_id = service.create_batch(engine, template=template, count=3, user="analyst")
    conversation_id = insert_conversation(engine)
    return {"batch_id": batch_id, "conversation_id": conversation_id, "template": template}


@pytest.fixture
def open_page(seeded) -> Callable[[str], AppTest]:
    """Run the entrypoint, then switch to `app_pages/<name>.py` and run it (as st.navigation would)."""

    def _open(name: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
        at.run()
        assert not at.exception, at.exception
        if name != "home":
            at.switch_page(f"app_pages/{name}.py").run()
        return at

    return _open
