"""Sign-in: signed out, only the sign-in page; signed in, the person acts; local mode says so; admins get admin pages."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from e2e_data import shown
from streamlit.testing.v1 import AppTest

from core.auth import ANONYMOUS, Role, acting_as, current_actor, system_actor
from core.auth.users import set_role
from core.config import ROOT
from core.store.schema import app_users, audit_events
from core.ui import user as ui_user

APP_TIMEOUT_S = 60
AUTH = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                 "client_id": "studio", "client_secret": "secret",
                 "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}
ISSUER = "https://idp.test"


def _claims(sub: str, email: str, name: str) -> dict:
    return {"is_logged_in": True, "iss": ISSUER, "sub": sub, "email": email, "name": name}


def _app(user: dict | None, *, page: str | None = None, signed_in_config: bool = True) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=APP_TIMEOUT_S)
    if signed_in_config:
        at.secrets = AUTH
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.title, *at.error, *at.warning,
                                             *at.info, *at.subheader])


def _titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def _user_rows(engine) -> list:
    with acting_as(system_actor()), engine.connect() as conn:  # on Postgres RLS shows a person only their own row
        return conn.execute(sa.select(app_users).where(app_users.c.issuer == ISSUER)).mappings().all()


def test_a_signed_out_visitor_sees_only_the_sign_in_page(engine, app_env):
    """Signed out, the app is the sign-in page and nothing else: no other page, no sidebar, no status, no data.

    (A deep link to another page's URL is the browser test's: AppTest opens pages by file, not URL.)
    """
    at = _app({"is_logged_in": False})
    for other in ("app_pages/batches.py", "app_pages/users.py", "app_pages/errors.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(other)
    assert _titles(at) == ["Sign in"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.children or not any(shown(c.value) for c in at.sidebar.caption)
    text = _texts(at)
    assert "Circuit breakers" not in text and "Offline sandbox" not in text and "Errors of this session" not in text
    assert _user_rows(engine) == []


def test_signed_out_the_process_default_is_nobody(engine, app_env):
    """With sign-in configured, code given no actor acts as nobody, not as the local user."""
    _app({"is_logged_in": False})
    assert current_actor(engine) == ANONYMOUS


def test_a_first_sign_in_creates_an_analyst_who_is_named_in_the_sidebar(engine, app_env):
    """A new person is created as an analyst at their first sign-in and the sidebar says who is signed in."""
    at = _app(_claims("a-1", "a@example.com", "Ada"))
    rows = _user_rows(engine)
    assert [(r["subject"], r["email"], r["role"]) for r in rows] == [("a-1", "a@example.com", "analyst")]
    assert any("Signed in as Ada · analyst" in shown(c.value) for c in at.sidebar.caption)
    assert "Sign out" in [b.label for b in at.sidebar.button]
    assert _titles(at) == ["LoRA Conversation Studio"]


def test_a_hostile_display_name_is_shown_as_text(engine, app_env):
    """A display name made of HTML and Markdown reaches the sidebar escaped, exactly as written."""
    name = "<img src=x onerror=alert(1)> **bold** [x](http://evil.test)"
    at = _app(_claims("h-1", "h@example.com", name))
    captions = [c.value for c in at.sidebar.caption if "Signed in as" in shown(c.value)]
    assert captions and f"Signed in as {name} · analyst" in shown(captions[0])
    assert re.search(r"(?<!\\)[<*\[]", captions[0]) is None  # every < * [ of the name is escaped


def test_the_person_is_looked_up_once_per_session_not_on_every_rerun(engine, app_env, monkeypatch):
    """Reruns reuse the session's person: sign_in runs once for three runs of the same session."""
    calls: list[str] = []
    real = ui_user.sign_in

    def counting(*args, **kwargs):
        calls.append(kwargs["subject"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ui_user, "sign_in", counting)
    at = _app(_claims("a-1", "a@example.com", "Ada"))
    at.run()
    at.run()
    assert calls == ["a-1"]
    with acting_as(system_actor()), engine.connect() as conn:
        signs = conn.execute(sa.select(sa.func.count()).select_from(audit_events)
                             .where(audit_events.c.action == "user.sign_in")).scalar_one()
    assert signs == 1


def test_an_analyst_has_no_admin_pages(engine, app_env):
    """An analyst's navigation has no Users or Audit page (their URLs are "page not found": the browser test)."""
    at = _app(_claims("a-1", "a@example.com", "Ada"))
    at.switch_page("app_pages/batches.py").run()
    assert _titles(at) == ["Batches"]
    for page in ("app_pages/users.py", "app_pages/audit.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


def test_a_role_change_shows_on_the_next_page_load(engine, app_env):
    """Made admin while signed in, the person gets the Users page in their next session."""
    _app(_claims("a-1", "a@example.com", "Ada"))
    with acting_as(current_actor_local(engine)):
        set_role(engine, "a@example.com", Role.ADMIN)
    at = _app(_claims("a-1", "a@example.com", "Ada"), page="app_pages/users.py")
    assert _titles(at) == ["Users"]
    assert any("Signed in as Ada · admin" in shown(c.value) for c in at.sidebar.caption)


def current_actor_local(engine):
    """The local user the migration made (an admin), to change roles as."""
    from core.auth.users import local_actor

    return local_actor(engine)


def test_an_unverified_email_does_not_make_an_admin(engine, app_env, monkeypatch):
    """An email the provider marks unverified is not trusted: STUDIO_ADMIN_EMAILS does not apply to it."""
    from core.config import reload_settings

    monkeypatch.setenv("STUDIO_ADMIN_EMAILS", "boss@example.com")
    reload_settings()
    _app({**_claims("x-1", "boss@example.com", "Not the boss"), "email_verified": False})
    rows = _user_rows(engine)
    assert [(r["email"], r["role"]) for r in rows] == [(None, "analyst")]


def test_local_mode_says_so_in_the_sidebar(engine, app_env):
    """Without [auth] the sidebar names the local user and says no sign-in is configured."""
    at = _app(None, signed_in_config=False)
    assert any("Local mode — signed in as analyst, role admin (no sign-in configured)" in shown(c.value)
               for c in at.sidebar.caption)
    assert "Sign out" not in [b.label for b in at.button]
    assert _user_rows(engine) == []
