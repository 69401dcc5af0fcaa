"""`python -m core generate` as a user runs it: a subprocess, with no key, or against a sandbox started on its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from core.config import ROOT
from core.generation import get_template, parse_conversation


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env.update(extra)
    return env


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", "generate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_sandbox() -> Iterator[str]:
    """`python -m core sandbox --port P --fault-rate 0.3` in its own process; yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "sandbox", "--port", str(port), "--fault-rate", "0.3", "--seed", "3",
         "--latency-ms", "0"],
        cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}") \
                        from None
                time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(10)


def _stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=5) as resp:
        return json.loads(resp.read())


def _check_conversation(out: str, turns: int) -> dict:
    payload = json.loads(out)
    messages = payload["messages"]
    assert messages[0]["role"] == "system" and len(messages) == turns + 1
    text = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages[1:])
    assert len(parse_conversation(text, turns)) == turns
    assert payload["usage"]["input_tokens"] > 0 and payload["usage"]["output_tokens"] > 0
    assert payload["cost_usd"] > 0
    return payload


def test_generate_with_no_key_prints_a_valid_conversation_from_the_in_process_sandbox():
    """No ANTHROPIC_* variables: --json prints a conversation with usage and cost, from the sandbox."""
    result = _run("--template", "tutoring", "--json", env=_env())
    assert result.returncode == 0, result.stderr
    payload = _check_conversation(result.stdout, 6)
    assert payload["provider"] == "sandbox"
    assert payload["params"]["persona"] == get_template("tutoring").default_persona


def test_generate_against_a_standalone_faulty_sandbox_succeeds(standalone_sandbox):
    """Through ANTHROPIC_BASE_URL, a sandbox injecting 30% faults still yields a conversation."""
    # 8 attempts: at 30% faults one call fails for good with probability 0.3**8, about 1 in 15,000
    result = _run("--template", "customer_support", "--turns", "8", "--json",
                  env=_env(ANTHROPIC_BASE_URL=standalone_sandbox, STUDIO_RETRY_MAX_ATTEMPTS="8"))
    assert result.returncode == 0, result.stderr
    payload = _check_conversation(result.stdout, 8)
    assert payload["provider"] == "endpoint"
    assert _stats(standalone_sandbox)["messages_requests"] == payload["attempts"] + payload["invalid_attempts"]


def test_a_validation_error_exits_2_naming_the_field():
    """An odd turn count exits 2 and the message names the turns field."""
    result = _run("--template", "tutoring", "--turns", "5", env=_env())
    assert result.returncode == 2
    assert "turns" in result.stderr and "even" in result.stderr


def test_a_failed_generation_exits_1_with_the_user_message(standalone_sandbox):
    """A 401 the chaos switch forces exits 1 and says the switch caused it."""
    request = urllib.request.Request(f"{standalone_sandbox}/_sandbox/config", method="POST",
                                     data=json.dumps({"force_status": 401}).encode(),
                                     headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()
    result = _run("--template", "tutoring", env=_env(ANTHROPIC_BASE_URL=standalone_sandbox))
    assert result.returncode == 1
    # the sandbox's forced status is the chaos switch: the message blames it, not the key
    assert "chaos switch rejects every call with 401" in result.stderr and "authentication_failed" in result.stderr
