"""Sign-in in a real browser against a real OIDC provider on loopback (oidc-provider-mock).

The app runs with `[auth]` pointing at the provider. A signed-out deep link shows the sign-in page
only; A signs in and creates a batch; B, in a second browser context, signs in and sees neither A's
batch in the list nor its page when opened by id; signing out returns to the sign-in page.

The provider's pages link a stylesheet from a CDN: every request off loopback is aborted, so the
test never leaves this machine, and the app's own pages must ask for nothing off it.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from browser_app import CHROMIUM, CHROMIUM_ARGS, SHOTS, RunningApp, migrated_data_dir

from core.auth import acting_as, system_actor
from core.store import create_store_engine
from core.store.schema import app_users, batch_jobs

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
PEOPLE = {
    "alice": {"email": "alice@example.com", "email_verified": True, "name": "Alice Analyst"},
    "bob": {"email": "bob@example.com", "email_verified": True, "name": "<img src=x onerror=alert(1)> Bob"},
}
WAIT_MS = 60_000


class Provider:
    """oidc-provider-mock served on a free loopback port from a thread of this process."""

    def __init__(self) -> None:
        import oidc_provider_mock
        import werkzeug.serving

        self.server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="oidc-provider", daemon=True)

    def __enter__(self) -> Provider:
        self.thread.start()
        for sub, claims in PEOPLE.items():  # the claims each subject's ID token carries
            req = urllib.request.Request(f"{self.url}/users/{urllib.parse.quote(sub)}", method="PUT",
                                         data=json.dumps(claims).encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                assert resp.status == 204
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with Provider() as running:
        yield running


@pytest.fixture(scope="module")
def signin_app(tmp_path_factory, provider) -> Iterator[RunningApp]:
    """The app with sign-in configured against the provider (no background worker: batches stay queued)."""
    data = migrated_data_dir(tmp_path_factory, "signin_app")
    secrets = data / "secrets.toml"
    app = RunningApp(data, STUDIO_SECRETS_FILE=str(secrets), STUDIO_UI_BACKGROUND_WORKER="false")
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "{app.url}/oauth2callback"\n'
        f'cookie_secret = "{uuid.uuid4().hex}{uuid.uuid4().hex}"\n'
        'client_id = "studio"\n'
        'client_secret = "studio-secret"\n'
        f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n', encoding="utf-8")
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def chromium(signin_app) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run the README's test command (bash scripts/test.sh).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visitor:
    """One browser context (its own cookies): a person at the app, with what left loopback and any dialog."""

    def __init__(self, browser: Any, app: RunningApp) -> None:
        self.app = app
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.off_loopback: list[tuple[str, str]] = []  # (the page that asked, what it asked for)
        self.dialogs: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _only_loopback(self, route: Any) -> None:
        host = urllib.parse.urlsplit(route.request.url).hostname or ""
        if host in LOOPBACK or host.startswith("127."):
            route.continue_()
        else:
            self.off_loopback.append((route.request.headers.get("referer", ""), route.request.url))
            route.abort()

    def app_asked_off_loopback(self) -> list[str]:
        """What the app's pages (not the provider's) asked for off this machine."""
        return [url for referer, url in self.off_loopback if referer.startswith(self.app.url) or not referer]

    def open(self, path: str) -> None:
        self.page.goto(f"{self.app.url}/{path}")
        self.page.get_by_role("heading", level=1).first.wait_for(timeout=WAIT_MS)

    def heading(self) -> str:
        return self.page.get_by_role("heading", level=1).first.inner_text()

    def sign_in(self, sub: str) -> None:
        """From the sign-in page, through the provider's form as `sub`, back to the app signed in."""
        self.open("")
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r"/oauth2/authorize"), timeout=WAIT_MS)
        self.page.get_by_placeholder("sub").fill(sub)
        self.page.get_by_role("button", name="Authorize").click()
        self.page.wait_for_url(re.compile(re.escape(self.app.url)), timeout=WAIT_MS)
        self.page.get_by_text(f"Signed in as {PEOPLE[sub]['name']}").wait_for(timeout=WAIT_MS)

    def sign_out(self) -> None:
        """Sign out, and end the session at the provider (the mock asks), back to the app."""
        self.page.get_by_role("button", name="Sign out").click()
        self.page.wait_for_url(re.compile(r"/oauth2/end_session"), timeout=WAIT_MS)
        self.page.get_by_role("button", name="End session").click()
        self.page.wait_for_url(re.compile(re.escape(self.app.url)), timeout=WAIT_MS)
        self.page.get_by_role("heading", level=1).first.wait_for(timeout=WAIT_MS)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(chromium, signin_app) -> Iterator[Any]:
    made: list[Visitor] = []

    def make() -> Visitor:
        made.append(Visitor(chromium, signin_app))
        return made[-1]

    yield make
    for v in made:
        assert v.dialogs == [], v.dialogs
        v.close()


def _row(app: RunningApp, table: sa.Table, cond: sa.ColumnElement[bool]) -> dict[str, Any] | None:
    """One row of the app's database, read as the system (it sees every person's)."""
    engine = create_store_engine(app.env["DATABASE_URL"])
    try:
        with acting_as(system_actor()), engine.connect() as conn:
            row = conn.execute(sa.select(table).where(cond)).mappings().first()
            return dict(row) if row is not None else None
    finally:
        engine.dispose()


def _sidebar_links(page: Any) -> list[str]:
    return [t.strip() for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


def test_a_signed_out_deep_link_shows_the_sign_in_page_only(visitor, signin_app):
    """Any page's URL, with or without a batch id, shows the sign-in page: no navigation, no status, no data."""
    v = visitor()
    for path in ("", f"batches?batch={uuid.uuid4()}", "errors", "users", "settings"):
        v.open(path)
        assert v.heading() == "Sign in", path
        assert _sidebar_links(v.page) == []
        body = v.page.locator("body").inner_text()
        assert "Circuit breakers" not in body and "Offline sandbox" not in body and "Page not found" not in body
    SHOTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(SHOTS / "signin.png"), full_page=True)
    assert v.app_asked_off_loopback() == []


def test_each_person_sees_only_their_own_batch_and_sign_out_returns_to_sign_in(visitor, signin_app):
    """A creates a batch; B signs in elsewhere and finds it neither listed nor by its id; B signs out."""
    alice = visitor()
    alice.sign_in("alice")
    assert alice.heading() == "LoRA Conversation Studio"
    assert "Users" not in _sidebar_links(alice.page)  # an analyst has no admin pages, and their URLs do not exist
    alice.open("users")
    alice.page.get_by_text("Page not found").first.wait_for(timeout=WAIT_MS)
    assert alice.heading() == "LoRA Conversation Studio"
    alice.page.screenshot(path=str(SHOTS / "signin_analyst_users_not_found.png"), full_page=True)
    a_row = _row(signin_app, app_users, app_users.c.email == "alice@example.com")
    assert a_row is not None and a_row["role"] == "analyst" and a_row["issuer"].startswith("http://127.0.0.1")

    name = f"alice-only-{uuid.uuid4().hex[:8]}"
    alice.open("batches")
    name_box = alice.page.get_by_role("textbox", name="Name (optional)").first
    name_box.fill(name)
    name_box.press("Enter")
    alice.page.get_by_role("button", name="Launch batch").click()
    alice.page.get_by_text(name).first.wait_for(timeout=WAIT_MS)
    batch = _row(signin_app, batch_jobs, batch_jobs.c.name == name)
    assert batch is not None and batch["owner_id"] == a_row["id"]
    alice.page.screenshot(path=str(SHOTS / "signin_alice_batches.png"), full_page=True)

    bob = visitor()
    bob.sign_in("bob")
    bob.open("batches")
    bob.page.get_by_text("Launch batch").first.wait_for(timeout=WAIT_MS)
    bob.page.wait_for_timeout(1500)  # the live list's first refresh
    assert name not in bob.page.locator("body").inner_text()
    bob.open(f"batches?batch={batch['id']}")
    bob.page.get_by_text("There is no batch with id").filter(visible=True).first.wait_for(timeout=WAIT_MS)
    body = bob.page.locator("body").inner_text()
    assert name not in body
    bob.page.screenshot(path=str(SHOTS / "signin_bob_not_found.png"), full_page=True)

    bob.sign_out()
    assert bob.heading() == "Sign in"
    bob.open(f"batches?batch={batch['id']}")
    assert bob.heading() == "Sign in"
    assert alice.app_asked_off_loopback() == [] and bob.app_asked_off_loopback() == []
