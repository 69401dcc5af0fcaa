"""Critical-error alerts: new critical rows are POSTed to the webhook, throttled, off the page thread."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core.config import override_settings
from core.errorlog.alerts import AlertWatcher, latest_error_pk, new_critical
from core.store.schema import error_logs, utcnow


def _insert(engine, severity: str, n: int = 1) -> None:
    rows = [{"error_id": uuid.uuid4().hex, "created_at": utcnow(), "error_type": "api", "error_code": "boom",
             "severity": severity, "message": "m", "user_message": "It broke.", "fingerprint": "f" * 32,
             "component": "test", "is_recoverable": False, "recovered": False, "resolved": False} for _ in range(n)]
    with engine.begin() as conn:
        conn.execute(error_logs.insert(), rows)


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_new_critical_returns_only_critical_rows_after_the_mark(engine):
    """Only critical rows newer than the mark come back, and the mark moves past them."""
    _insert(engine, "critical")
    mark = latest_error_pk(engine)
    _insert(engine, "warn", 3)
    _insert(engine, "critical", 2)
    rows, new_mark = new_critical(engine, mark)
    assert len(rows) == 2 and all(r["error_code"] == "boom" for r in rows)
    assert new_mark == latest_error_pk(engine)
    assert new_critical(engine, new_mark)[0] == []


def test_webhook_gets_new_critical_errors_throttled(engine, webhook):
    """Critical rows arriving within the interval are sent together in the next allowed POST."""
    url, received = webhook
    override_settings(alert_webhook_url=url, alert_webhook_min_interval_s=3600)
    watcher = AlertWatcher(engine)
    _insert(engine, "critical")  # before the watcher's first look: not alerted
    watcher.check_once()
    _insert(engine, "critical", 2)
    watcher.check_once()
    assert len(received) == 1 and len(received[0]["errors"]) == 2
    assert "2 new critical error(s)" in received[0]["text"]
    _insert(engine, "critical")
    watcher.check_once()  # throttled: held back
    assert len(received) == 1 and watcher.sent == 2


def test_unreachable_webhook_is_recorded_not_raised(engine):
    """A webhook that cannot be reached counts a failure; the watcher carries on."""
    override_settings(alert_webhook_url="http://127.0.0.1:9/nothing", alert_webhook_min_interval_s=0,
                      alert_webhook_timeout_s=1)
    watcher = AlertWatcher(engine)
    watcher.check_once()
    _insert(engine, "critical")
    watcher.check_once()
    assert watcher.failures == 1 and watcher.posts == 0
