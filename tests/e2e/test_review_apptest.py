"""The Review page: the queue as a chat with its evidence, accept / reject / edit, Next / Previous, bulk; reviewers only."""

from __future__ import annotations

import re

import pytest
from audit_support import audit_rows
from e2e_data import shown
from people import person
from review_support import decisions, interrupt_a_bulk_accept, reviewed, stored
from streamlit.testing.v1 import AppTest

from core import review
from core.auth import Role, acting_as, system_actor
from core.auth.audit import AuditAction
from core.auth.users import set_role
from core.config import ROOT, reload_settings

APP_TIMEOUT_S = 60
FAKE_KEY = "sk-ant-api03-" + "x" * 40
HOSTILE = f"<img src=x onerror=alert(1)> **bold** {FAKE_KEY}"


@pytest.fixture
def reviewer(engine, app_env, monkeypatch):
    """The local user is a reviewer (the page is not in an analyst's navigation)."""
    actor = person(engine, "r@example.com", Role.REVIEWER)
    monkeypatch.setenv("STUDIO_USER", "r@example.com")
    reload_settings()
    return actor


def _open() -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
    at.run()
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    return at


def _heading(at: AppTest) -> str:
    text = next(m.value for m in at.main.markdown if "in the queue" in m.value)
    return shown(re.sub(r"(?<!\\)\*\*", "", text))  # the page's own bold markers


def _click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_the_oldest_conversation_is_shown_as_a_chat_with_its_checks_score_duplicate_and_judge(engine, reviewer):
    """Turns as text (HTML and Markdown escaped, the key redacted), failed checks named, parts, passage, reasons."""
    first = stored(engine, None, 1, failed=("meta_text",), score=47, duplicate_of="d" * 36, start=0,
                   turns=[{"role": "user", "content": HOSTILE}, {"role": "assistant", "content": "Sure."}],
                   judge={"scores": {"realism": 2}, "reasons": {"realism": "The user sounds scripted."}})[0]
    stored(engine, None, 1, start=5)
    at = _open()
    assert "Conversation 1 of 2 in the queue" in _heading(at) and first[:8] in _heading(at)
    assert len(at.chat_message) == 2
    turn = at.chat_message[0].markdown[0].value
    assert "<img src=x onerror=alert(1)> **bold** [REDACTED]" in shown(turn)
    assert FAKE_KEY not in shown(turn) and re.search(r"(?<!\\)[<*]", turn) is None  # every < and * escaped
    assert any("meta_text" in shown(e.value) for e in at.main.error)
    assert at.metric[0].value == "47 / 100"
    [why] = [shown(i.value) for i in at.main.info if "In the queue because" in shown(i.value)]
    assert why == ("In the queue because it nearly duplicates conversation dddddddd; its score 47 is under the "
                   "accept score 85.")
    assert any("near-duplicate" in shown(w.value) and "dddddddd" in shown(w.value) for w in at.main.warning)
    frames = [d.value for d in at.dataframe]
    assert any("Reason" in f and "The user sounds scripted." in list(f["Reason"]) for f in frames)
    assert any(shown(c.value) == "checks 47" for c in at.main.caption)  # the score's parts


def test_accept_takes_the_conversation_out_and_shows_the_next_reject_keeps_the_note(engine, reviewer):
    """Accept: audited, the next one at the same place; Reject with a note: the note kept with the decision."""
    a, b = stored(engine, None, 2)
    at = _open()
    _click(at, "review.accept")
    assert reviewed(engine, a)["review_status"] == "accepted" and reviewed(engine, a)["reviewed_by"] == reviewer.user_id
    assert "Conversation 1 of 1" in _heading(at) and b[:8] in _heading(at)
    at.text_input(key=f"review.note_{b}").set_value("off topic").run()
    _click(at, "review.reject")
    assert (reviewed(engine, b)["review_status"], reviewed(engine, b)["review_note"]) == ("rejected", "off topic")
    assert len(audit_rows(engine, AuditAction.REVIEW_DECISION)) == 2
    assert any("Nothing needs review" in s.value for s in at.main.success)


def test_next_and_previous_move_along_the_queue(engine, reviewer):
    """Next shows the second oldest, Previous the first again; nothing is decided by moving."""
    a, b = stored(engine, None, 2)
    at = _click(_open(), "review.next")
    assert b[:8] in _heading(at) and "Conversation 2 of 2" in _heading(at)
    at = _click(at, "review.prev")
    assert a[:8] in _heading(at)
    assert decisions(engine) == []


def test_a_filter_narrows_the_queue_and_starts_it_again_from_its_first(engine, reviewer):
    """On the second of three, a failed-check filter that matches one shows "1 of 1", that one."""
    stored(engine, None, 2)
    failing = stored(engine, None, 1, failed=("refusal",), start=5)[0]
    at = _click(_open(), "review.next")
    assert "Conversation 2 of 3" in _heading(at)
    at.text_input(key="review.check").set_value("refusal").run()
    assert not at.exception, at.exception
    assert "Conversation 1 of 1" in _heading(at) and failing[:8] in _heading(at)


def test_edit_saves_a_turn_and_keeps_the_turns_as_generated(engine, reviewer):
    """Edit opens a form per turn; saving one changes that turn only and keeps the original."""
    cid = stored(engine, None, 1)[0]
    at = _click(_open(), "review.edit")
    at.text_area(key=f"review.text_{cid}_1").set_value("Hello, how can I help?")
    at.button(key=f"FormSubmitter:review.edit_{cid}_1-Save turn 2").click().run()
    assert not at.exception, at.exception
    row = reviewed(engine, cid)
    assert row["turns"][1]["content"] == "Hello, how can I help?" and row["original_turns"][1]["content"] == "Hello"
    assert row["review_status"] == "needs_review"
    assert [d["decision"] for d in decisions(engine)] == ["edited"]


def test_bulk_accept_asks_naming_how_many_then_decides_the_filtered_queue(engine, reviewer):
    """Accept all… asks with the count; nothing changes until Yes; then every one is accepted under one operation."""
    ids = stored(engine, None, 3)
    at = _click(_open(), "review.bulk_accept")
    assert any("Accept 3 conversations" in shown(w.value.replace("**", "")) for w in at.main.warning)
    assert decisions(engine) == []
    at = _click(at, "review.bulk_confirm")
    assert {reviewed(engine, i)["review_status"] for i in ids} == {"accepted"}
    assert len({d["operation_id"] for d in decisions(engine)}) == 1
    assert any("Nothing needs review" in s.value for s in at.main.success)


def test_an_interrupted_bulk_accept_is_offered_and_resumed_from_the_page(engine, reviewer, monkeypatch):
    """The page names the stopped operation and how far it got; Resume decides the rest under the same operation."""
    ids = stored(engine, None, 5)
    interrupt_a_bulk_accept(engine, monkeypatch, reviewer, review.ReviewFilter())
    at = _open()
    assert any("interrupted bulk accept of the queue stopped after 3 conversations" in shown(w.value)
               for w in at.main.warning)
    at = _click(at, "review.resume_0")
    assert {reviewed(engine, i)["review_status"] for i in ids} == {"accepted"}
    assert len({d["operation_id"] for d in decisions(engine)}) == 1 and len(decisions(engine)) == 5
    assert not any("interrupted" in shown(w.value) for w in at.main.warning)


_AUTH = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                  "client_id": "studio", "client_secret": "secret",
                  "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}


def _signed_in(email: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
    at.secrets = _AUTH
    at.user = {"is_logged_in": True, "iss": "https://idp.test", "sub": email, "email": email, "name": email}
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_review_page_is_in_a_reviewers_navigation_and_not_in_an_analysts(engine, app_env):
    """A signed-in analyst cannot open it; the same person made a reviewer can."""
    at = _signed_in("a@example.com")
    at.switch_page("app_pages/batches.py").run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/review.py")
    with acting_as(system_actor()):
        set_role(engine, "a@example.com", Role.REVIEWER)
    at = _signed_in("a@example.com")
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Review"]
