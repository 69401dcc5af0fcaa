"""The environment every test starts from: no settings of this machine, data and secrets in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

APP_VARIABLES = ("DATABASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def isolate_environment(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Drop the app's variables; point the data dir and secrets.toml into `root`; ENVIRONMENT=test."""
    for key in list(os.environ):
        if key.startswith("STUDIO_") or key in APP_VARIABLES:
            mp.delenv(key, raising=False)
    mp.setenv("STUDIO_DATA_DIR", str(root / "data"))
    mp.setenv("STUDIO_SECRETS_FILE", str(root / "no-secrets.toml"))
    mp.setenv("ENVIRONMENT", "test")
