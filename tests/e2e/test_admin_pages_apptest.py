"""The admin pages: Users lists people and changes a role after a confirmation; Audit filters and pages the trail."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from e2e_data import shown
from people import TEST_ISSUER
from streamlit.testing.v1 import AppTest

from core.auth import acting_as, system_actor
from core.auth.audit import AuditAction, audit
from core.auth.users import sign_in
from core.config import ROOT
from core.store.schema import app_users, audit_events
from core.store.tx import write_tx

APP_TIMEOUT_S = 60
HOSTILE = "<img src=x onerror=alert(1)> **bold** [x](http://evil.test)"


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def mallory(engine, app_env):
    """A person whose display name is HTML and Markdown (names come from the identity provider)."""
    return sign_in(engine, issuer=TEST_ISSUER, subject="sub-m", email="m@example.com", name=HOSTILE)


def _role(engine, user_id: str) -> str:
    with acting_as(system_actor()), engine.connect() as conn:
        return conn.execute(sa.select(app_users.c.role).where(app_users.c.id == user_id)).scalar_one()


def _role_changes(engine) -> int:
    with acting_as(system_actor()), engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit_events)
                            .where(audit_events.c.action == AuditAction.ROLE_CHANGE.value)).scalar_one()


def _ask_admin_for(at: AppTest, user_id: str) -> AppTest:
    at.selectbox(key="users.user").set_value(user_id).run()
    at.selectbox(key=f"users.role_{user_id}").set_value("admin").run()
    at.button(key="users.ask").click().run()
    assert not at.exception, at.exception
    return at


def test_users_lists_everyone_with_hostile_names_as_plain_cells(engine, mallory):
    """The table holds each user's name exactly as given, as a cell (never Markdown)."""
    at = _open("users")
    frame = at.dataframe[0].value
    assert HOSTILE in list(frame["Name"]) and "m@example.com" in list(frame["Email"])
    assert "analyst" in list(frame["Role"])


def test_a_role_changes_only_after_the_confirmation(engine, mallory):
    """Change role… asks first, naming the person and both roles (escaped); Yes changes it and audits it once."""
    at = _ask_admin_for(_open("users"), mallory.user_id)
    assert _role(engine, mallory.user_id) == "analyst"
    warning = at.main.warning[0].value
    unbolded = re.sub(r"(?<!\\)\*\*", "", warning)  # the page's own bold markers, not the name's (escaped)
    assert f"Change the role of {HOSTILE} · m@example.com from analyst to admin?" in shown(unbolded)
    assert re.search(r"(?<!\\)<", warning) is None
    at.button(key="users.confirm").click().run()
    assert not at.exception, at.exception
    assert _role(engine, mallory.user_id) == "admin" and _role_changes(engine) == 1
    assert not at.main.warning


def test_cancel_leaves_the_role_as_it_was(engine, mallory):
    """Cancel on the confirmation drops the question and changes nothing."""
    at = _ask_admin_for(_open("users"), mallory.user_id)
    at.button(key="users.cancel").click().run()
    assert _role(engine, mallory.user_id) == "analyst" and _role_changes(engine) == 0
    assert not at.main.warning


def _events(engine, n: int, action: AuditAction = AuditAction.BATCH_CREATE) -> None:
    with acting_as(system_actor()), write_tx(engine) as conn:
        for i in range(n):
            audit(conn, action, "batch", f"batch-{i:04d}", {"count": i})


def test_audit_lists_events_newest_first_paged_on_the_server(engine, mallory):
    """60 events: page 1 shows 50 (the sign-in too), Next shows the rest; a count says how many in all."""
    _events(engine, 60)
    at = _open("audit")
    assert len(at.dataframe[0].value) == 50
    assert any("61 events · page 1 of 2" in c.value for c in at.caption)
    at.button(key="audit.next").click().run()
    assert len(at.dataframe[0].value) == 11


def test_audit_filters_by_action_who_and_target(engine, mallory):
    """The action, who and target-id filters each narrow the rows; the person's name shows as a cell."""
    _events(engine, 3)
    at = _open("audit")
    at.multiselect(key="audit.actions").set_value([AuditAction.SIGN_IN.value]).run()
    frame = at.dataframe[0].value
    assert list(frame["Action"]) == ["user.sign_in"] and list(frame["Who"]) == [HOSTILE]
    at.multiselect(key="audit.actions").set_value([]).run()
    at.selectbox(key="audit.who").set_value("system").run()
    assert set(at.dataframe[0].value["Who"]) == {"system"} and len(at.dataframe[0].value) == 3
    at.text_input(key="audit.target").input("batch-0001").run()
    assert list(at.dataframe[0].value["Target id"]) == ["batch-0001"]


def test_a_selected_event_shows_its_detail_as_data(engine, mallory):
    """Selecting a row shows the whole event as JSON (data, not Markdown)."""
    at = _open("audit")
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert at.json and '"user.sign_in"' in at.json[0].value
