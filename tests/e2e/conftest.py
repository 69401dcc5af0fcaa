"""Fixtures for the app tests: a seeded store and an AppTest of the real entrypoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2e_data import insert_conversation
from streamlit.testing.v1 import AppTest

from core.config import ROOT, reload_settings

APP_TIMEOUT_S = 60  # the first run imports plotly, pandas and the SDK


@pytest.fixture
def app_env(monkeypatch) -> None:
    """No background worker (tests drive batches themselves); retries stay instant."""
    monkeypatch.setenv("STUDIO_UI_BACKGROUND_WORKER", "false")
    monkeypatch.setenv("STUDIO_ALERT_POLL_INTERVAL_S", "3600")
    reload_settings()


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
