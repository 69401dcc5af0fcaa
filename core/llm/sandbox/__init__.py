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

Endpoints (shapes as the anthropic SDK parses them):

    POST /v1/messages                          a Message, or its SSE stream (stream: true)
    POST /v1/messages/count_tokens             {"input_tokens": n}
    POST /v1/messages/batches                  create {"requests": [{"custom_id", "params"}]} -> MessageBatch
    GET  /v1/messages/batches/{id}             retrieve -> MessageBatch (in_progress | canceling | ended)
    GET  /v1/messages/batches                  list, newest first: ?limit=1..1000 (20) &after_id= | &before_id=
                                               -> {"data", "has_more", "first_id", "last_id"}
    GET  /v1/messages/batches/{id}/results     JSONL, one line per request, once ended:
                                               {"custom_id", "result": succeeded (message) | errored (error) |
                                               expired | canceled}
    POST /v1/messages/batches/{id}/cancel      -> MessageBatch "canceling"; ends soon, unreached requests canceled
    DELETE /v1/messages/batches/{id}           once ended
    GET  /v1/models, /v1/models/{id}
    GET|POST /_sandbox/config, GET /_sandbox/stats, POST /_sandbox/reset
    GET  /_sandbox/batch_requests              {custom_id: times submitted in a batch}; srv.batch_submissions()

Message Batches knobs (SandboxConfig fields; CLI --batch-*; app settings STUDIO_SANDBOX_BATCH_*):

    batch_processing_s     a batch ends this long after creation (0.5 s); results are decided then
    batch_error_rate       share of requests errored with a retryable overloaded_error or api_error
    batch_invalid_rate     share errored with invalid_request_error (params the API refuses always are)
    batch_expired_rate     share expired
    batch_canceled_rate    share canceled (a real cancel also cancels the requests not reached yet)

Each request's outcome is a hash of (seed, custom_id, times that custom_id was submitted before):
the same on every run, and fresh for a resubmission. Succeeded results carry usage with
service_tier "batch".

Prompt caching: a system or message block with `cache_control` ({"type": "ephemeral"}, optionally
"ttl": "1h") marks a cacheable prefix; a prefix at least the model's `cache_min_tokens`
(core/llm/prices.toml) long is written the first time (`cache_creation_input_tokens`, split in
`cache_creation.ephemeral_5m/1h_input_tokens`) and read after (`cache_read_input_tokens`), per
ttl, for `cache_ttl_5m_s` / `cache_ttl_1h_s` after its last use; `input_tokens` is the rest.
The same holds inside a batch, in request order.

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
