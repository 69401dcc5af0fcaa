"""Read or change a sandbox's fault settings: in this process, or over a sandbox endpoint's admin route."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from core.config import get_settings

__all__ = ["fault_config"]

_ROUTE = "/_sandbox/config"


def fault_config(client: Any, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sandbox's config as a dict, after applying `changes` (if any) to it.

    `client` is the app's model client: its in-process sandbox when it has one, else the
    endpoint at its base URL (a sandbox started elsewhere) through POST/GET {base_url}/_sandbox/config.
    """
    if client.sandbox is not None:
        if changes:
            client.sandbox.configure(**changes)
        return dict(client.sandbox.config.to_dict())
    data = json.dumps(changes).encode() if changes else None
    req = urllib.request.Request(f"{client.base_url}{_ROUTE}", data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=get_settings().alert_webhook_timeout_s) as resp:  # noqa: S310
        return dict(json.loads(resp.read() or b"{}"))
