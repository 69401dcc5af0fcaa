"""The offline sandbox: an Anthropic-compatible model server on loopback, with faults and limits on demand.

    srv = SandboxServer(SandboxConfig(seed=1, rpm=60))
    base_url = srv.start()          # e.g. http://127.0.0.1:54321
    client = anthropic.Anthropic(base_url=base_url, api_key="sandbox", max_retries=0)
    srv.configure(fault_rate=0.3)   # or POST {"fault_rate": 0.3} to {base_url}/_sandbox/config
    srv.stats(); srv.reset(); srv.stop()
"""

from core.llm.sandbox.config import SandboxConfig, SandboxConfigError
from core.llm.sandbox.server import SandboxServer
from core.llm.sandbox.text import estimate_tokens, parse_brief, request_input_tokens

__all__ = [
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxServer",
    "estimate_tokens",
    "parse_brief",
    "request_input_tokens",
]
