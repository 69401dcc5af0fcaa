"""Hostile text in every field that reaches a page is shown as text: no element, no request, no dialog.

The store is seeded before the app starts with one hostile string (HOSTILE: an <img> to a
foreign host, a Markdown image and a javascript: link, a `:red[…]` directive, math, a
<script>, an <iframe srcdoc> that calls alert, a password <form>, a bare foreign URL) in a
batch's name, persona, topic, status reason and item error; in a conversation's turns (the
model's reply), params, system prompt and model; in error-log rows (message, user message,
code, component, request and batch ids); and in drafts (topic, persona, error message, user).
Then every page is visited, with HOSTILE also in the query parameters, the Generate form
(the sandbox writes the topic into its reply) and the Errors "open by id" field, and a critical error arrives while a page is open (its toast).

After each step: no element carrying the marker (img/iframe/script/form/object/embed, or any
src/href/srcdoc/action attribute naming the foreign host or javascript:), no KaTeX, the words
inside the directive and the link still shown with their brackets (so neither rendered), no
browser request to anything but the app's own origin (this covers the page icon and fonts),
a page icon that is the app's or inline, and no JavaScript dialog. Screenshots land in
artifacts/screenshots/untrusted-*.png.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from browser_app import CHROMIUM, CHROMIUM_ARGS, SHOTS, RunningApp, open_expander
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

EVIL = "evil.invalid"
HOSTILE = (f'<img src="http://{EVIL}/x.png"> ![pixel](http://{EVIL}/p.png) [clickme](javascript:alert(1)) '
           ':red[boom] $\\alpha$ <script>alert(1)</script> <iframe srcdoc="<script>parent.alert(1)</script>">'
           f'</iframe> <form action="http://{EVIL}/f"><input type=password name=evilpw></form> '
           f"https://{EVIL}/auto tail")
HOSTILE_ID = '<iframe srcdoc="<script>parent.alert(document.domain)</script>">'
ERROR_ID = "e" * 32  # the hostile error row, opened by id on the Errors page
HOSTILE_CODE = f'<a href="http://{EVIL}/a">chartlink</a> {HOSTILE}'
CHART_ROWS = 40

# Everything a rendered injection would leave in the DOM; returns descriptions of what it found.
_SCAN_JS = r"""
(evil) => {
  const found = [];
  const urlAttrs = ["src", "href", "action", "formaction", "data", "poster", "xlink:href", "background"];
  for (const el of document.querySelectorAll("*")) {
    for (const a of el.attributes) {
      const v = a.value || "";
      let bad = false;
      if (urlAttrs.includes(a.name)) {
        // a link to one of the app's own pages may carry the hostile text in its query string
        let url = null;
        try { url = new URL(v, location.href); } catch (e) { bad = v.includes(evil); }
        if (url) bad = url.protocol === "javascript:" || (url.origin !== location.origin && v.includes(evil));
      } else if (a.name === "srcdoc" || a.name.startsWith("on") || a.name === "style") {
        bad = v.includes(evil) || /javascript:|alert\(/i.test(v);
      }
      if (bad) found.push(`${el.tagName} ${a.name}=${v.slice(0, 80)}`);
    }
    if (["SCRIPT", "IFRAME", "FORM", "OBJECT", "EMBED"].includes(el.tagName) && /alert|evil|evilpw/.test(el.outerHTML))
      found.push(`element ${el.outerHTML.slice(0, 120)}`);
  }
  if (document.querySelector("input[name=evilpw]")) found.push("password input");
  if (document.querySelector(".katex")) found.push("KaTeX rendered");
  for (const a of document.querySelectorAll("a")) {
    const t = a.textContent.trim();
    if (t === "clickme" || t === "chartlink") found.push(`link ${t}`);
  }
  const text = document.body.innerText;
  const count = (s) => text.split(s).length - 1;
  if (count("boom") !== count(":red[boom]")) found.push(`directive rendered: ${count("boom")} boom, ${count(":red[boom]")} literal`);
  if (count("clickme") !== count("[clickme]")) found.push("link text without its brackets");
  for (const l of document.querySelectorAll("link[rel~=icon]")) {
    const h = l.href || "";
    if (!(h.startsWith(location.origin) || h.startsWith("data:"))) found.push(`page icon from ${h.slice(0, 80)}`);
  }
  return found;
}
"""


def _seed(url: str) -> dict[str, Any]:
    """Hostile text in a batch, its items, a conversation, error rows and drafts; returns their ids."""
    import sqlalchemy as sa

    from core.auth.users import sign_in
    from core.batches import service
    from core.drafts import start_draft
    from core.errorlog.seed import seed_errors
    from core.generation import GenerationParams, template_names
    from core.store import create_store_engine, migrate
    from core.store.schema import (
        batch_items,
        batch_jobs,
        conversation_drafts,
        conversations,
        error_logs,
        utcnow,
    )

    engine = create_store_engine(url)
    migrate(engine, force=True)
    seed_errors(engine, 30, days=1)
    template = template_names()[0]
    batch_id = service.create_batch(engine, template=template, count=2, name="plain name",
                                    personas=[HOSTILE], topics=[HOSTILE])
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == batch_id).values(
            name=HOSTILE, status="failed", status_reason=HOSTILE, created_by=HOSTILE, finished_at=now))
        conn.execute(batch_items.update().where(batch_items.c.batch_id == batch_id).values(
            status="failed", attempts=3, last_error=HOSTILE, last_error_code="server_error"))
        conn.execute(conversations.insert().values(
            id=str(uuid.uuid4()), batch_id=batch_id, item_index=0, template=template, model=HOSTILE,
            params={"persona": HOSTILE, "emotion": HOSTILE, "topic": HOSTILE, "turns": 2},
            system_prompt=HOSTILE, turns=[{"role": "user", "content": HOSTILE},
                                          {"role": "assistant", "content": f"Sure.\n\n{HOSTILE}\n\n# {HOSTILE}"}],
            turn_count=2, input_tokens=10, output_tokens=10, cost_usd=0.0, status="ok", created_by="analyst",
            created_at=now))
        # enough rows of one hostile code to put it first in the Top codes chart (drawn as text, never a link)
        for n in range(CHART_ROWS):
            conn.execute(error_logs.insert().values(
                error_id=ERROR_ID if n == 0 else uuid.uuid4().hex, created_at=now, error_type="api",
                error_code=HOSTILE_CODE, severity="error", message=HOSTILE, user_message=HOSTILE,
                fingerprint="f" * 32, component=HOSTILE, request_id=HOSTILE, operation_id=batch_id,
                context={"note": HOSTILE}, user_id=HOSTILE, is_recoverable=True, recovered=False, resolved=False))
    params = GenerationParams(template=template, persona="a tester", emotion="curious", topic="billing", turns=4)
    mine = start_draft(engine, params)
    orphan = start_draft(engine, params)
    # another person, whose display name is hostile: Recovery names them in "What happened"
    other = sign_in(engine, issuer="https://issuer.test", subject="hostile", email=None, name=HOSTILE)
    with engine.begin() as conn:
        row = conn.execute(sa.select(conversation_drafts.c.params).where(conversation_drafts.c.id == mine.id)).one()
        hostile_params = {**(row.params or {}), "persona": HOSTILE, "topic": HOSTILE, "emotion": HOSTILE}
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == mine.id).values(
            params=hostile_params, status="failed", error_message=HOSTILE, partial_text=HOSTILE))
        # another user's draft, left open a day: Recovery names its user in "What happened"
        conn.execute(conversation_drafts.update().where(conversation_drafts.c.id == orphan.id).values(
            params=hostile_params, partial_text=HOSTILE, user_id=other.user_id, updated_at=now - timedelta(days=1)))
    from core.templates import EdgeCase, TemplateContent
    from core.templates.store import save_template

    save_template(engine, "hostile_template", TemplateContent(
        title=HOSTILE[:190], description=HOSTILE, system_prompt=HOSTILE,
        user_template=f"{HOSTILE} {{persona}} {{emotion}} {{topic}} {{turns}} {{extra}}",
        variables={"persona": (HOSTILE,), "emotion": (HOSTILE,), "topic": (HOSTILE,), "extra": (HOSTILE,)},
        edge_cases=(EdgeCase(HOSTILE[:300], HOSTILE, 1),)))
    engine.dispose()
    return {"batch_id": batch_id}


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run the README's test command (bash scripts/test.sh).")
    data = tmp_path_factory.mktemp("untrusted")
    url = f"sqlite:///{data / 'studio.db'}"
    seeded = _seed(url)
    running = RunningApp(data, STUDIO_UI_LIVE_REFRESH_S="1").start()
    running.seeded = seeded  # type: ignore[attr-defined]
    running.database_url = url  # type: ignore[attr-defined]
    yield running
    running.stop()


class Watched:
    """A page with every request and dialog recorded."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page, self.origin = page, origin
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        self.problems: list[str] = []  # every step's findings, asserted at the end of the test
        page.on("request", self._request)
        page.on("dialog", self._dialog)

    def _request(self, request: Any) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url == self.origin or url.startswith(("data:", "blob:"))):
            self.foreign.append(url)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, path: str) -> None:
        self.page.goto(f"{self.origin}/{path}")
        self.page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        self.page.wait_for_timeout(2500)  # fragments, charts and the sidebar draw after the first paint

    def expand_session_errors(self) -> None:
        panel = self.page.get_by_text(re.compile(r"^Errors of this session")).first
        panel.click()
        self.page.wait_for_timeout(800)

    def shown(self, step: str, text: str) -> None:
        """`text` is on the page as literal text, so the checks look at a page that has the hostile text."""
        try:
            self.page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=45_000)
        except PlaywrightTimeout:
            self.problems.append(f"{step}: {text!r} is not shown as text")

    def check(self, step: str) -> None:
        """Nothing injected, nothing fetched from elsewhere, no dialog; a screenshot of the step."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"untrusted-{step}.png"), full_page=True)
        injected = self.page.evaluate(_SCAN_JS, EVIL)
        self.problems += [f"{step}: injected {found}" for found in dict.fromkeys(injected)]
        self.problems += [f"{step}: request to another host {url}" for url in dict.fromkeys(self.foreign)]
        self.problems += [f"{step}: dialog {d}" for d in self.dialogs]
        if self.page.locator('[data-testid="stException"]').count():
            self.problems.append(f"{step}: exception box")
        self.foreign.clear()
        self.dialogs.clear()

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def watched(app) -> Iterator[Watched]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 2000})
        yield Watched(context.new_page(), app.url)
        context.close()
        browser.close()


def test_hostile_text_on_home_generate_and_recovery_stays_text(watched, app):
    """Home (batches, drafts, a new critical error's toast), Generate (drafts, a hostile reply) and Recovery."""
    watched.open("")
    watched.shown("home", ":red[boom]")
    watched.check("home")

    from core.store import create_store_engine
    from core.store.schema import error_logs, utcnow

    engine = create_store_engine(app.database_url)
    with engine.begin() as conn:
        conn.execute(error_logs.insert().values(
            error_id="c" * 32, created_at=utcnow(), error_type="api", error_code="authentication_failed",
            severity="critical", message=HOSTILE, user_message=f"toast {HOSTILE}", fingerprint="c" * 32,
            component=HOSTILE, is_recoverable=False, recovered=False, resolved=False))
    engine.dispose()
    watched.page.locator('[data-testid="stToast"]').first.wait_for(timeout=30_000)
    watched.check("home-toast")

    watched.open("generate")
    watched.shown("generate-drafts", "[clickme]")
    watched.check("generate-drafts")
    topic = watched.page.get_by_role("combobox", name="Topic")  # suggestions, or the person's own words
    topic.click()
    topic.fill(HOSTILE)
    topic.press("Enter")
    watched.page.get_by_label("Turns (messages, even)").fill("2")
    watched.page.get_by_role("button", name="Generate").click()
    watched.page.get_by_text(re.compile(r"Saved to Conversations")).first.wait_for(timeout=120_000)
    if not watched.page.locator('[data-testid="stChatMessage"]').filter(has_text=":red[boom]").count():
        watched.problems.append("generate-result: the hostile topic is not in the reply as text")
    watched.check("generate-result")

    watched.open("recovery")
    watched.shown("recovery", ":red[boom]")
    watched.shown("recovery", "generation by <img")
    watched.check("recovery")
    watched.assert_clean()


def test_hostile_text_on_batches_and_conversations_stays_text(watched, app):
    """The batch card (name, Why:), its detail, a hostile ?batch= id, and the conversation read as a chat."""
    batch_id = app.seeded["batch_id"]
    watched.open("batches")
    watched.shown("batches", "Why:")
    watched.shown("batches", ":red[boom]")
    watched.check("batches")

    watched.open(f"batches?batch={batch_id}")
    watched.page.get_by_text("Details:").first.wait_for(timeout=60_000)
    watched.check("batches-detail")

    watched.open(f"batches?batch={quote(HOSTILE_ID)}")
    watched.expand_session_errors()
    watched.shown("batches-unknown-id", "no batch with id")
    watched.check("batches-unknown-id")

    watched.open(f"conversations?batch={batch_id}")
    watched.page.locator('[data-testid="stChatMessage"]').first.wait_for(timeout=30_000)
    watched.shown("conversations", "[clickme]")
    watched.check("conversations")

    watched.open(f"conversations?batch={quote(HOSTILE)}")
    watched.check("conversations-hostile-param")
    watched.assert_clean()


def test_hostile_text_on_errors_and_settings_stays_text(watched, app):
    """Errors: table, groups, the detail of a hostile row, a hostile id and query params; Settings."""
    watched.open("errors")
    watched.check("errors")
    watched.page.get_by_role("tab", name="Groups by fingerprint").click()
    watched.page.wait_for_timeout(2000)
    watched.shown("errors-groups", "[clickme]")
    watched.check("errors-groups")
    watched.page.get_by_role("tab", name="Rows").click()
    opener = watched.page.get_by_label("Open an error by id")
    opener.fill(ERROR_ID)
    opener.press("Enter")
    watched.page.get_by_role("dialog").first.wait_for(timeout=30_000)
    watched.page.wait_for_timeout(1500)
    watched.check("errors-detail")
    watched.page.keyboard.press("Escape")
    watched.page.wait_for_timeout(800)
    opener.fill(HOSTILE_ID)
    opener.press("Enter")
    watched.page.get_by_text("No error with id").first.wait_for(timeout=30_000)
    watched.check("errors-unknown-id")

    watched.open(f"errors?batch={quote(HOSTILE)}&request={quote(HOSTILE)}")
    watched.check("errors-hostile-params")

    # an error of this session (the unknown id), then Settings by the sidebar, so the session panel lists it
    watched.open(f"batches?batch={quote(HOSTILE_ID)}")
    watched.page.get_by_role("link", name="Settings").first.click()
    watched.page.get_by_role("heading", name="Settings", level=1).wait_for(timeout=30_000)
    watched.page.get_by_role("button", name="Run health checks").click()
    watched.page.wait_for_timeout(1500)
    watched.expand_session_errors()
    watched.check("settings")
    watched.assert_clean()


def test_hostile_text_on_the_templates_page_stays_text(watched, app):
    """A template whose every text is hostile: the list, the editor, the preview and the version picker."""
    watched.open("templates")
    watched.check("templates")
    watched.page.get_by_role("combobox", name="Edit").click()
    watched.page.get_by_role("option", name=re.compile("hostile_template")).click()
    watched.page.get_by_text("Editing version 1 of hostile_template").first.wait_for(timeout=30_000)
    watched.page.wait_for_timeout(2000)
    watched.shown("templates-preview", ":red[boom]")
    watched.check("templates-editor")
    watched.open("batches")
    open_expander(watched.page, "New batch")
    watched.page.get_by_role("combobox", name="Template").first.click()
    watched.page.get_by_role("option", name=re.compile("clickme")).first.click()
    watched.page.wait_for_timeout(2000)
    watched.check("templates-batch-form")
    watched.assert_clean()
