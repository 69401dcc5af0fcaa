"""Critical-error alerts: a toast in the app, and a webhook POST when one is configured.

A process-wide watcher thread looks for critical rows newer than the last it saw (a primary
key range, cheap at any table size) and, when `settings.alert_webhook_url` is set, POSTs them
as JSON — at most once per `alert_webhook_min_interval_s`; rows that arrive in between are
sent together with the next POST. It never runs on a page's thread, so a slow or dead webhook
cannot block the page. Pages use `new_critical` with their own high-water mark for toasts: a
page is shown the critical rows its person may see (their own and the system's), the watcher,
which runs as the system, every one.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from sqlalchemy import Engine, func, select

from core.auth.actor import set_actor, system_actor
from core.config import get_settings
from core.errorlog import record
from core.errorlog.filters import visible
from core.process_wide import ProcessWide
from core.store.schema import error_logs
from core.store.tx import read_conn

__all__ = ["AlertWatcher", "latest_error_pk", "new_critical", "post_webhook", "start_watcher", "stop_watcher"]

_ALERT_COLUMNS = (
    error_logs.c.id, error_logs.c.error_id, error_logs.c.created_at, error_logs.c.error_type,
    error_logs.c.error_code, error_logs.c.component, error_logs.c.user_message, error_logs.c.operation_id,
    error_logs.c.request_id,
)
_MAX_ROWS_PER_CHECK = 100


def latest_error_pk(engine: Engine) -> int:
    """The newest error row's primary key (0 for an empty log)."""
    with read_conn(engine) as conn:
        return int(conn.execute(select(func.max(error_logs.c.id))).scalar() or 0)


def new_critical(engine: Engine, after_pk: int, limit: int = _MAX_ROWS_PER_CHECK) -> tuple[list[dict[str, Any]], int]:
    """Critical rows the actor may see with a primary key above `after_pk`, oldest first, and the new high-water mark."""
    with read_conn(engine) as conn:
        rows = conn.execute(
            select(*_ALERT_COLUMNS)
            .where(error_logs.c.id > after_pk, error_logs.c.severity == "critical", *visible(conn))
            .order_by(error_logs.c.id).limit(limit)
        ).mappings().all()
        top = int(conn.execute(select(func.max(error_logs.c.id))).scalar() or 0)
    found = [dict(r) for r in rows]
    mark = found[-1]["id"] if len(found) == limit else max(top, after_pk)
    return found, mark


def _payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    settings = get_settings()
    first = rows[0]
    text = (f"{len(rows)} new critical error(s) in LoRA Conversation Studio ({settings.environment}); "
            f"first: {first['error_code']} in {first['component']}: {first['user_message']}")
    return {
        "text": text,
        "environment": settings.environment,
        "errors": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "id"}
                   for r in rows],
    }


def post_webhook(url: str, rows: list[dict[str, Any]], timeout_s: float) -> int:
    """POST the rows as JSON; returns the HTTP status. Raises OSError/URLError on failure."""
    body = json.dumps(_payload(rows)).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - URL set by an operator
        return int(resp.status)


class AlertWatcher:
    """Polls for new critical errors and POSTs them to the webhook, throttled."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent = 0
        self.posts = 0
        self.failures = 0
        self._pending: list[dict[str, Any]] = []
        self._last_post: float | None = None
        self._mark: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-alert-watcher", daemon=True)

    def start(self) -> AlertWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def check_once(self) -> None:
        """One poll: pick up new critical rows and POST if the throttle allows."""
        settings = get_settings()
        if self._mark is None:
            self._mark = latest_error_pk(self.engine)  # alert only on what happens from now on
            return
        rows, self._mark = new_critical(self.engine, self._mark)
        if not settings.alert_webhook_url:
            return  # no webhook: nothing to hold on to
        self._pending.extend(rows)
        now = time.monotonic()
        due = self._last_post is None or now - self._last_post >= settings.alert_webhook_min_interval_s
        if self._pending and due:
            batch, self._pending = self._pending, []
            self._last_post = now
            try:
                post_webhook(settings.alert_webhook_url, batch, settings.alert_webhook_timeout_s)
            except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: a malformed URL
                self.failures += 1

                record(exc, component="errorlog.alerts", context={"rows": len(batch)}, severity="warn")
                return
            self.posts += 1
            self.sent += len(batch)

    def _run(self) -> None:
        set_actor(system_actor())  # it watches every person's critical errors, and records its own as nobody's
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive a bad poll (DB down)

                record(exc, component="errorlog.alerts", severity="warn")
            self._stop.wait(get_settings().alert_poll_interval_s)


_watchers: ProcessWide[AlertWatcher] = ProcessWide(close=AlertWatcher.stop)


def start_watcher(engine: Engine) -> AlertWatcher:
    """The process-wide watcher for `engine` (started once)."""
    return _watchers.get(str(engine.url), lambda: AlertWatcher(engine).start())


def stop_watcher() -> None:
    _watchers.clear()
