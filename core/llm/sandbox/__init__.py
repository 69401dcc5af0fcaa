"""The offline sandbox: an Anthropic-compatible model server on loopback, with faults and limits on demand.

    srv = SandboxServer(SandboxConfig(seed=1, rpm=60))
    base_url = srv.start()          # e.g. http://127.0.0.1:54321
    client = anthropic.Anthropic(base_url=base_url, api_key="sandbox", max_retries=0)
    srv.configure(fault_rate=0.3)   # or POST {"fault_rate": 0.3} to {base_url}/_sandbox/config
    srv.stats(); srv.reset(); srv.stop()

What the SDK (max_retries=0) raises for each fault, streaming or not:

    rate_429 / 500 / 503 / 529, force_status   RateLimitError / InternalServerError /
                                               ServiceUnavailableError / OverloadedError / by status
    rate_disconnect                            APIConnectionError
    rate_slow (slow_s > client timeout)        APITimeoutError
    rate_stream_cut                            streaming: httpx2.RemoteProtocolError from the event
                                               iterator (the SDK does not wrap it), after some deltas;
                                               not streaming: APIConnectionError
    rate_stream_error                          streaming: APIStatusError with status 200 (an `error`
                                               event, overloaded_error, after some deltas);
                                               not streaming: a normal answer
    rate_malformed_json                        json.JSONDecodeError
    rate_invalid_conversation                  nothing: a 200 Message whose text breaks the format
    rpm / input_tpm / output_tpm exceeded      RateLimitError with retry-after and retry-after-ms

The text depends only on (seed, request content). The fault sequence depends on the seed and
the order calls arrive in, which concurrency can change.
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
