"""The Settings page keeps the alert webhook the operator's: masked, locked when set outside the app, http(s) only."""

from __future__ import annotations

from e2e_data import shown
from streamlit.testing.v1 import AppTest

from core import settings_store
from core.config import get_settings, reload_settings

HOOK = "https://hooks.slack.com/services/T0001/B0002/tokenTOKENtoken123"


def _everything(at: AppTest) -> str:
    """Every value the page sent to the browser: element values, labels, widget values."""
    out: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _save(at: AppTest) -> None:
    at.button[[b.label for b in at.button].index("Save and apply")].click().run()


def test_a_saved_webhook_url_is_never_sent_to_the_browser(open_page, engine):
    """The page shows the webhook as scheme and host; its token-bearing path is in no element or widget value."""
    settings_store.save(engine, {"alert_webhook_url": HOOK})
    at = open_page("settings")
    assert not at.exception
    page = _everything(at)
    assert "tokenTOKENtoken123" not in page and "/services/" not in page
    assert "https://hooks.slack.com/…" in page
    assert at.text_input(key="settings.alert_webhook_url").value == ""


def test_a_webhook_url_that_is_not_http_is_refused_beside_the_field(open_page, engine):
    """file:// is refused beside the field, naming it by its label; nothing is saved; a valid URL then saves."""
    at = open_page("settings")
    at.text_input(key="settings.alert_webhook_url").input("file:///etc/passwd")
    _save(at)
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [
        "Alert webhook URL must be an http:// or https:// URL with a host (or empty: no alerts)."]
    assert get_settings().alert_webhook_url == "" and settings_store.load(engine) == {}

    at.text_input(key="settings.alert_webhook_url").input(HOOK)
    _save(at)
    assert not at.exception and not at.error
    assert get_settings().alert_webhook_url == HOOK


def test_a_webhook_url_from_the_environment_cannot_be_changed_in_the_ui(open_page, engine, monkeypatch):
    """With STUDIO_ALERT_WEBHOOK_URL set outside the app the field is locked, says why, and a saved value is ignored."""
    settings_store.save(engine, {"alert_webhook_url": "https://saved.example.com/old"})
    monkeypatch.setenv("STUDIO_ALERT_WEBHOOK_URL", HOOK)
    reload_settings()
    at = open_page("settings")
    assert not at.exception
    assert "settings.alert_webhook_url" not in [t.key for t in at.text_input]
    assert any("STUDIO_ALERT_WEBHOOK_URL is set by the operator" in shown(c.value) for c in at.caption)
    page = _everything(at)
    assert "tokenTOKENtoken123" not in page and "https://hooks.slack.com/…" in page
    assert get_settings().alert_webhook_url == HOOK
