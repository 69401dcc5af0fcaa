"""The Templates page in Chromium: an analyst writes a template with a custom variable and an edge case,
previews it, runs a balanced 6-item batch from it on the Batches page, and reads the coverage grid."""

from __future__ import annotations

import re

import pytest
from browser_app import SHOTS, goto, open_expander

pytestmark = pytest.mark.browser

FIELDS = {
    "Name (lower-case letters, digits and _)": "claim_desk",
    "Title": "Claim desk",
    "System prompt (sent as written; the prefix prompt caching reuses)": "You are a claims handler at Harbor Mutual.",
    "First-user-turn instruction ({persona}, {emotion}, {topic}, {turns} and your variables)":
        "The policyholder is {persona}, feels {emotion}, calls about {topic} and is {customer}. {turns} messages.",
    "Persona values (one a line)": "a farmer\na nurse",
    "Emotion values (one a line)": "worried",
    "Topic values (one a line)": "a flooded barn",
    "Custom variables (one a line: name: value; another value)": "customer: a long-time customer; a new customer",
    "Edge cases (one a line: name | weight | instruction)":
        "switches language | 1 | Halfway through, {persona} switches to Spanish.\nplain | 1 | Nothing unusual happens.",
}


def _fill(page, label: str, text: str) -> None:
    box = page.get_by_label(label)
    box.fill(text)
    box.press("Tab")  # a text area sends its value when it loses focus
    page.wait_for_timeout(700)


def test_a_new_template_runs_a_balanced_batch_and_shows_its_coverage(page, app):
    """Create (custom variable + edge case), preview the twist, launch 6 balanced items, see the grid at 6/6."""
    goto(page, app, "templates")
    page.get_by_text("Fill in the fields").first.wait_for(timeout=30_000)
    for label, text in FIELDS.items():
        _fill(page, label, text)
    page.get_by_text("System prompt", exact=True).first.wait_for(timeout=30_000)  # the preview is there
    page.get_by_role("combobox", name="Edge case").click()
    page.get_by_role("option", name="switches language").click()
    page.get_by_text(re.compile("a farmer switches to Spanish")).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Create template").click()
    page.get_by_text("Editing version 1 of claim_desk").first.wait_for(timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "templates.png"), full_page=True)

    goto(page, app, "batches")
    open_expander(page, "New batch")
    template = page.get_by_role("combobox", name="Template").first
    template.wait_for(timeout=90_000)  # the new-batch form draws after the heading: on a loaded machine, late
    template.click()
    page.get_by_role("option", name="Claim desk").click()
    page.get_by_label("Coverage").first.wait_for(timeout=30_000)
    page.get_by_text("Balanced: every cell as often as the count allows").click()
    count = page.get_by_label("Conversations")
    count.fill("6")
    count.press("Tab")
    page.get_by_text(re.compile(r"6 conversations shared among them evenly")).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Launch batch").click()
    page.get_by_text(re.compile(r"6 / 6 \(100%\)")).first.wait_for(timeout=180_000)
    page.get_by_text(re.compile(r"^Coverage \(done / items per cell")).first.click()
    grid = page.get_by_text(re.compile(r"^a flooded barn$")).first
    grid.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "batch_coverage.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
