"""Start the real app (streamlit run) on a free port with a fresh SQLite database and the sandbox.

A free port chosen by the OS for each app, so xdist workers never share one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from core.config import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 90
SHOTS = ROOT / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def migrated_data_dir(tmp_path_factory: Any, name: str) -> Path:
    """A fresh folder for an app under test, its SQLite store migrated."""
    from core.store import create_store_engine, migrate

    data = Path(tmp_path_factory.mktemp(name))
    engine = create_store_engine(f"sqlite:///{data / 'studio.db'}")
    migrate(engine, force=True)
    engine.dispose()
    return data


def app_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of the app under test: its own SQLite file, no key (so the sandbox), fast sandbox."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STUDIO_") and k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "DATABASE_URL")}
    env.update({
        "DATABASE_URL": f"sqlite:///{data_dir / 'studio.db'}",
        "STUDIO_DATA_DIR": str(data_dir),
        "STUDIO_SECRETS_FILE": str(data_dir / "no-secrets.toml"),
        "ENVIRONMENT": "test",
        "STUDIO_SANDBOX_LATENCY_MS": "5",
        "STUDIO_SANDBOX_TOKENS_PER_S": "150",
        "STUDIO_RETRY_BACKOFF_BASE_S": "0.5",
        "STUDIO_RETRY_BACKOFF_CAP_S": "2",
        "STUDIO_RATE_LIMIT_RPM": "600",
        "STUDIO_WORKER_POLL_INTERVAL_S": "0.5",
        **extra,
    })
    return env


class RunningApp:
    """`streamlit run Home.py` (or another `script`) as a subprocess; `url` once it answers its health check."""

    def __init__(self, data_dir: Path, script: str = "Home.py", **extra_env: str) -> None:
        self.script = script
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "streamlit.log"
        self.env = app_environment(data_dir, **extra_env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RunningApp:
        streamlit = Path(sys.executable).with_name("streamlit")
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            # Streamlit reads the secrets the settings do (a developer's .streamlit/secrets.toml is not the test's)
            [str(streamlit), "run", self.script, "--server.port", str(self.port), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--secrets.files", self.env["STUDIO_SECRETS_FILE"]],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not answer within {START_TIMEOUT_S} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def goto(page: Any, app: RunningApp, path: str) -> None:
    """Open `path` of the app in `page` and wait for its first heading."""
    page.goto(f"{app.url}/{path}")
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)


def open_expander(page: Any, label: str, timeout: float = 90_000) -> None:
    """Make sure the expander labelled `label` is open, clicking its header only if it is shut.

    The app opens some expanders itself ("New batch" starts open) and the person opens others;
    on loaded CI runs Streamlit's frontend has twice drawn such an expander shut under the test
    (the content was sent, the <details> closed), so a test about what is inside opens it as a
    person would, rather than wait for content nobody can see.
    """
    summary = page.locator('[data-testid="stExpander"] summary', has_text=label).first
    summary.wait_for(timeout=timeout)
    if not summary.evaluate("s => s.closest('details').open"):
        summary.click()
    page.wait_for_function("s => s.closest('details').open", arg=summary.element_handle(), timeout=timeout)
