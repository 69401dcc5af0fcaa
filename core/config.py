"""Settings: one typed model, read from environment variables, then `.streamlit/secrets.toml`, then defaults.

Every number the design names lives here with a name, a plain-language title (the Settings
page's label) and its bounds. Each field is read from the environment variable of its
upper-cased name prefixed with ``STUDIO_`` (for example ``STUDIO_RETRY_MAX_ATTEMPTS``), except
the few well-known names in ``_PLAIN_ENV`` (``DATABASE_URL``, ``ANTHROPIC_API_KEY``, ...);
secrets.toml may name a setting either way. An invalid value fails at start with a message
naming the variable and saying what it allows; so does a setting that was removed.
"""

from __future__ import annotations

import math
import os
import threading
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.settings_model import CheckedModel, RuleBroken, described, fraction, non_negative, positive, whole

__all__ = ["OPERATOR_FIELDS", "ROOT", "Settings", "SettingsError", "auth_secrets", "env_name", "get_settings",
           "load_settings", "override_settings", "reload_settings", "set_outside_the_app"]

ROOT = Path(__file__).resolve().parent.parent

_PLAIN_ENV = {
    "database_url": "DATABASE_URL",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "environment": "ENVIRONMENT",
    "user_name": "STUDIO_USER",
}

# Settings that carry a secret or send data out of the app: they belong to the operator. Their values
# never appear in a message, and where the environment or secrets.toml sets one, nothing saved in the
# app overrides it (core.settings_store).
OPERATOR_FIELDS = frozenset({"anthropic_api_key", "anthropic_base_url", "database_url", "alert_webhook_url",
                             "admin_emails"})

# Settings that no longer exist, and what to do instead: one still set would otherwise be ignored
# while its operator expects it to work.
_REMOVED = {
    "STUDIO_RATE_LIMIT_DEFAULT_PAUSE_S": "a 429 now pauses only its own request, for as long as the answer asks",
    "STUDIO_RATE_LIMIT_UNCHARGED_STATUSES": "use STUDIO_RATE_LIMIT_REFUND_STATUSES (empty by default: the API "
                                            "counts refused requests against the limit)",
    "STUDIO_TEST_CRASH_AFTER_REPLY": "the crash tests inject the crash themselves",
}


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def env_name(name: str) -> str:
    """The environment variable that sets field `name`."""
    return _PLAIN_ENV.get(name, f"STUDIO_{name.upper()}")


def _is_http_url(v: str) -> bool:
    try:
        parts = urlsplit(v)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(host) and v == v.strip()


class Settings(BaseSettings, CheckedModel):
    """Typed settings: each field's title is its label, its bounds are the rule messages quote."""

    model_config = SettingsConfigDict(frozen=True, allow_inf_nan=False, extra="forbid", validate_default=True)

    error: ClassVar[type[ValueError]] = SettingsError
    hidden: ClassVar[frozenset[str]] = OPERATOR_FIELDS

    # where things live
    environment: Literal["development", "staging", "production", "test"] = Field(
        default="production", title="Environment")
    database_url: str = Field(default="", title="Database URL")  # empty: sqlite file under data_dir
    data_dir: str = Field(default=str(ROOT / "data"), title="Data folder")
    # SQLite page cache per connection (an upper bound, filled on demand). SQLite's default of
    # 2 MB holds little of the error log's ten indexes at a million rows, so every insert
    # re-read index pages from the OS; 0 keeps SQLite's default.
    sqlite_cache_mb: int = non_negative(64, "SQLite page cache per connection (MB)", most=4096,
                                       zero="SQLite's default")
    # how long a SQLite statement waits for another connection's lock before failing "database is locked"
    sqlite_busy_timeout_s: float = non_negative(30.0, "SQLite lock wait (s)", most=3600)
    user_name: str = described("analyst", "Local user name", "a name, not empty")
    # who administers: these people are admins from their first sign-in (comma-separated emails)
    admin_emails: str = described("", "Admin emails", "email addresses separated by commas (or empty)")
    user_last_seen_interval_s: float = positive(300.0, "Least time between two 'last seen' updates (s)",
                                                most=86_400)

    # model access
    anthropic_api_key: str = Field(default="", title="Anthropic API key")
    anthropic_base_url: str = Field(default="", title="Model endpoint URL")
    # pricing falls back to this model's prices for an unknown name, and lists it first
    default_model: str = Field(default="claude-sonnet-5-5", title="Default model")
    request_timeout_s: float = positive(120.0, "Longest wait for a model reply (s)", most=3600)
    max_output_tokens: int = positive(4096, "Longest reply (tokens)", most=128_000)

    # retries (tenacity): full jitter, exponential
    retry_max_attempts: int = positive(4, "Attempts per model call", most=20)
    retry_backoff_base_s: float = non_negative(1.0, "Wait before the first retry (s)", most=600)
    retry_backoff_cap_s: float = non_negative(32.0, "Longest retry wait (s)", most=3600)
    retry_after_cap_s: float = non_negative(120.0, "Longest wait the server may ask for (s)", most=3600)
    retry_instant: bool = Field(default=False, title="Retry without waiting")  # tests: waits become zero
    # opt-in for an integration test that measures a real retry-after wait while backoff stays instant
    retry_after_when_instant: bool = Field(default=False, title="Honour server-asked waits when retrying instantly")
    generation_invalid_retries: int = non_negative(2, "Retries of a malformed conversation", most=20)
    # one conversation: messages counted one by one (user and assistant), even so it ends on the assistant
    generation_min_turns: int = positive(2, "Fewest messages in a conversation", most=500)
    generation_max_turns: int = positive(40, "Most messages in a conversation", most=500)
    # what a new conversation or batch asks for until the user says otherwise
    generation_default_turns: int = positive(6, "Messages in a new conversation", most=500)
    generation_max_field_chars: int = positive(500, "Longest persona, emotion or topic (characters)", most=10_000)
    generation_max_template_chars: int = positive(20_000, "Longest prompt template (characters)", most=1_000_000)
    # templates as data (core.templates): what one version may declare, and what a model accepts
    template_max_variables: int = positive(20, "Most variables in a template", most=200)
    template_max_values: int = positive(200, "Most suggested values of one variable", most=10_000)
    template_max_edge_cases: int = positive(50, "Most edge cases in a template", most=1_000)
    template_max_versions: int = positive(10_000, "Most versions of one template", most=10_000_000)
    template_max_file_bytes: int = positive(1_000_000, "Largest template YAML file (bytes)", most=50_000_000)
    model_context_tokens: int = positive(200_000, "Tokens a model accepts, prompt and reply", most=10_000_000)
    # the input-token estimate before a call (the rate limiter's, corrected by the reply's usage, and
    # a batch's cost estimate): characters / estimate_chars_per_token
    estimate_chars_per_token: float = positive(3.5, "Characters per token (estimate)", most=20)
    estimate_tokens_per_message: int = non_negative(8, "Tokens per message overhead (estimate)", most=1000)
    db_retry_max_attempts: int = positive(4, "Attempts per database operation", most=20)
    # Postgres ends a session idle inside a transaction this long (0: never): our transactions take
    # milliseconds, so it is a worker stopped (SIGSTOP) or hung mid-transaction, whose row locks
    # would otherwise hold up every other worker for as long as it stays stopped
    db_idle_in_transaction_timeout_s: float = non_negative(60.0, "Idle-in-transaction limit (s)", most=3600, zero="never")
    db_retry_backoff_base_s: float = non_negative(0.05, "First database retry wait (s)", most=60)
    db_retry_backoff_cap_s: float = non_negative(2.0, "Longest database retry wait (s)", most=600)

    # circuit breakers
    breaker_failure_threshold: int = positive(5, "Failures that open a breaker", most=100_000)
    breaker_window_s: float = positive(60.0, "Window in which failures are counted (s)", most=3600)
    # events within one slot share one entry of the limiter's and breakers' windows, which so stay
    # at window / slot entries at any call rate (one entry per call held ~50k, ~6 MB, at 200 items/s)
    resilience_window_slot_s: float = positive(0.25, "Window slot (s)", most=60)
    breaker_cooldown_s: float = non_negative(30.0, "Pause before trying a failing service again (s)", most=3600)
    # a breaker opened by dropped or refused connections (which reconnecting fixes) probes after
    # this long, doubling at each re-open up to breaker_cooldown_s
    breaker_reconnect_cooldown_s: float = non_negative(1.0, "First cool-down after a dropped connection (s)",
                                                       most=3600)
    # a breaker opens only when failures are also this share of the calls in the window
    breaker_failure_ratio: float = fraction(0.5, "Failure share that opens a breaker")
    breaker_success_threshold: int = positive(2, "Successes that close a breaker", most=100)
    breaker_half_open_max_calls: int = positive(1, "Probe calls while half open", most=100)

    # rate limiting (see core/resilience/_limiter.py for what each number does)
    rate_limit_rpm: int = positive(50, "Requests per minute the account allows", most=1_000_000)
    rate_limit_input_tpm: int = positive(40_000, "Tokens per minute the account allows (input)", most=1_000_000_000)
    rate_limit_output_tpm: int = positive(16_000, "Tokens per minute the account allows (output)", most=1_000_000_000)
    # answers whose request slot is given back to the limiter. Empty by default: the API counts a
    # request it answered with a 429, 5xx or 529 against the limit, so refunding it overshoots
    rate_limit_refund_statuses: tuple[int, ...] = Field(default=(), title="Statuses whose request is given back")
    # bucket capacity in seconds of the rate: at most this much is sent at once. Kept under the
    # upstream's own burst allowance (about a second of its rate) so pacing never draws a 429
    rate_limit_burst_s: float = positive(0.5, "Burst (seconds of the rate)", most=60)
    # 429s without rate-limit headers slow everyone only when sustained: at least _sustained_min
    # of them and _sustained_share of the answers in the last _sustained_window_s
    rate_limit_sustained_window_s: float = positive(10.0, "Sustained 429 window (s)", most=3600)
    rate_limit_sustained_share: float = fraction(0.15, "Share of 429s that slows everyone", above_zero=True)
    rate_limit_sustained_min: int = positive(3, "Fewest 429s that slow everyone", most=1000)
    # a cut multiplies the rate by decrease_factor (at most one per relax_after_s); each quiet
    # relax_after_s adds relax_step back, so the configured rate returns within seconds
    # 1.0: never slow down
    rate_limit_decrease_factor: float = fraction(0.8, "Slow-down factor after 429s", above_zero=True)
    rate_limit_min_factor: float = fraction(0.25, "Slowest pace (share of the rate)", above_zero=True)
    rate_limit_relax_step: float = fraction(0.1, "Pace recovered per quiet interval")
    rate_limit_relax_after_s: float = positive(1.0, "Quiet interval before speeding up (s)", most=3600)
    # a call waiting longer than this for the limiter is recorded in the error log and shown on its batch
    rate_limit_visible_wait_s: float = positive(10.0, "Rate-limit wait worth reporting (s)", most=3600)

    # drafts, batches, workers
    autosave_interval_s: float = positive(5.0, "Save a draft every (s)", most=3600)
    lease_duration_s: float = positive(30.0, "Worker lease (s)", most=3600)
    heartbeat_interval_s: float = positive(10.0, "Worker heartbeat (s)", most=3600)
    worker_concurrency: int = positive(4, "Parallel calls per worker", most=256)
    # the most parallel items one batch or one worker may ask for (a bound on input, not a default)
    max_concurrency: int = positive(64, "Most parallel calls allowed", most=256)
    batch_name_max_chars: int = positive(200, "Longest batch name (characters)", most=1000)
    # the most rows a list command prints at once (batch list --limit)
    list_max_rows: int = positive(1_000, "Most rows a list prints", most=100_000)
    # the furthest back a span like 7d may reach (errors --since, demo seed-errors --days)
    time_span_max_days: int = positive(36_500, "Furthest time span (days)", most=36_500)
    worker_poll_interval_s: float = positive(1.0, "Worker poll interval (s)", most=600)
    # a stand-alone worker writes conversations it never reads again: a small page cache per
    # connection keeps it well under 300 MB at 10,000 results (bench/message_batches_worker.py)
    worker_sqlite_cache_mb: int = non_negative(4, "SQLite page cache per connection of a stand-alone worker (MB)",
                                               most=4096, zero="the app's (sqlite_cache_mb)")
    item_max_attempts: int = positive(3, "Attempts per batch item", most=20)
    # deaths of the worker with the item in flight (crash, kill -9, stopped past its lease), counted
    # apart from item_max_attempts; after the first, the item runs alone (see core.batches.leases),
    # so reaching this many means it was alone in flight at the others: failed as poison
    item_max_lost_attempts: int = positive(3, "Worker deaths an item survives", most=20)
    batch_max_items: int = positive(100_000, "Most items in a batch", most=10_000_000)
    upload_max_bytes: int = positive(10 * 1024 * 1024, "Largest upload (bytes)", most=1_073_741_824)
    draft_ttl_hours: float = positive(24.0, "Draft lifetime (hours)", most=8760)
    draft_grace_days: float = non_negative(7.0, "Expired draft grace (days)", most=3650)
    orphan_draft_minutes: float = positive(30.0, "Abandoned draft after (minutes)", most=10_080)
    # batches: live throughput is measured over this trailing window
    batch_throughput_window_s: float = positive(300.0, "Throughput window (s)", most=86_400)
    # SIGTERM: in-flight items get this long to finish before they go back to pending
    worker_shutdown_grace_s: float = non_negative(5.0, "Shutdown grace (s)", most=3600)
    # a worker with nothing to do waits this long before probing an open breaker again at the latest
    worker_breaker_probe_max_s: float = positive(60.0, "Longest wait before probing an open breaker (s)", most=3600)
    checkpoint_retention_days: float = non_negative(7.0, "Checkpoint retention (days)", most=3650)
    # long operations without an items table (resolve a group, retention) commit this many rows per
    # transaction with their checkpoint, so an interrupted one resumes there (core.store.resumable)
    checkpoint_chunk_rows: int = positive(5000, "Rows per checkpointed transaction", most=1_000_000)
    # review (core.review): a bulk accept or reject commits this many conversations per transaction with
    # its checkpoint (and the page's progress bar moves as often); an edited turn is at most this long
    review_bulk_chunk_rows: int = positive(200, "Conversations per bulk review transaction", most=100_000)
    review_turn_max_chars: int = positive(50_000, "Longest edited turn (characters)", most=1_000_000)
    csv_max_value_chars: int = positive(2_000, "Longest CSV value (characters)", most=1_000_000)
    # cost estimates before a batch starts: expected output tokens per message of a conversation
    estimate_output_tokens_per_turn: int = positive(80, "Output tokens per message (estimate)", most=128_000)
    # ... until the template has finished conversations: then the mean of its latest this many
    # (at least the fewest below: one or two conversations say little)
    estimate_history_conversations: int = positive(200, "Conversations a batch estimate averages", most=100_000)
    estimate_history_min_conversations: int = positive(5, "Fewest conversations a measured estimate needs",
                                                       most=100_000)
    # launching a batch estimated above this asks first, showing the estimate (0: always ask)
    batch_confirm_above_usd: float = non_negative(5.0, "Ask before launching a batch costing more than ($)",
                                                  most=1_000_000, zero="always ask")
    # Message Batches mode (core.batches.message_batches): the largest remote batch, in requests and in
    # bytes of its request JSON (the API's own limits are 100,000 and 256 MB), how often an open one is
    # polled, how many results are committed between two saves of the resume point, and how far before a
    # submission's own row a remote batch may have been created and still be matched to it (clock skew)
    message_batch_max_requests: int = positive(100_000, "Most requests in one remote batch", most=100_000)
    message_batch_max_bytes: int = positive(256 * 1024 * 1024, "Largest remote batch (bytes)",
                                            most=256 * 1024 * 1024)
    message_batch_poll_interval_s: float = positive(60.0, "Poll a remote batch every (s)", most=3600)
    message_batch_results_chunk: int = positive(100, "Results committed per resume point", most=100_000)
    message_batch_match_skew_s: float = non_negative(300.0, "Clock skew allowed matching a remote batch (s)",
                                                     most=86_400)
    # the highest spend cap a batch may carry ($)
    batch_budget_max_usd: float = positive(1_000_000.0, "Highest batch budget ($)", most=1_000_000_000)
    # every worker runs the recovery cleanup (expired drafts, old checkpoints, error-log retention)
    # this often, the first time one interval after it starts; 0 turns it off
    cleanup_interval_s: float = non_negative(3600.0, "Cleanup interval (s)", most=604_800, zero="off")

    # error log
    retention_days_error: int = positive(180, "Error retention (days)", most=3650)
    retention_days_other: int = positive(30, "Other log retention (days)", most=3650)
    log_sample_rate_debug: float = fraction(0.1, "Share of debug events kept")
    log_sample_rate_info: float = fraction(1.0, "Share of info events kept")
    log_writer_batch_size: int = positive(500, "Log rows per write", most=100_000)
    # when the writer finds a deep queue it commits up to this many rows per transaction (at least
    # log_writer_batch_size): fewer commits, and a hot index page is written to the WAL once, not per 500 rows
    log_writer_max_batch_rows: int = positive(5000, "Most log rows per transaction", most=1_000_000)
    log_writer_interval_s: float = positive(0.2, "Log write interval (s)", most=60)
    # While record() calls keep coming (a gap shorter than log_writer_linger_ms), the writer waits
    # instead of taking the GIL from their threads to shape rows; it writes once the burst pauses,
    # after log_writer_max_linger_s at most, at half of log_queue_max, or when flush() asks. 0: off.
    log_writer_linger_ms: float = non_negative(2.0, "Log burst gap (ms)", most=1000, zero="off")
    log_writer_max_linger_s: float = non_negative(0.25, "Longest log burst wait (s)", most=60)
    log_queue_max: int = positive(100_000, "Log queue size", most=10_000_000)
    log_ring_size: int = positive(100, "Recent events kept in memory", most=100_000)
    log_context_max_chars: int = positive(8000, "Longest event context (characters)", most=1_000_000)
    log_text_max_chars: int = positive(20_000, "Longest event text (characters)", most=1_000_000)
    # a batch's status reason, an item's last error, a draft's error message: redacted, then cut to this
    stored_reason_max_chars: int = positive(2000, "Longest stored reason (characters)", most=100_000)
    log_spool_retry_s: float = non_negative(5.0, "Spool retry interval (s)", most=3600)
    log_shutdown_timeout_s: float = non_negative(5.0, "Log flush at exit (s)", most=600)
    log_search_max_chars: int = positive(200, "Longest log search (characters)", most=10_000)
    log_page_size_max: int = positive(500, "Most log rows per page", most=10_000)
    log_export_batch_rows: int = positive(2000, "Log rows per export chunk", most=1_000_000)
    log_seed_chunk_rows: int = positive(20_000, "Demo rows per chunk", most=1_000_000)
    log_seed_max_rows: int = positive(10_000_000, "Most demo rows", most=100_000_000)
    log_seed_sqlite_cache_mb: int = positive(512, "Demo seeding SQLite cache (MB)", most=16_384)
    alert_webhook_url: str = described("", "Alert webhook URL",
                                       "an http:// or https:// URL with a host (or empty: no alerts)")
    alert_webhook_min_interval_s: float = non_negative(60.0, "Least time between alerts (s)", most=86_400)
    alert_poll_interval_s: float = positive(5.0, "Alert check interval (s)", most=3600)
    alert_webhook_timeout_s: float = positive(5.0, "Alert delivery timeout (s)", most=600)

    # the app (Streamlit pages)
    # run batches in a thread of the app process
    ui_background_worker: bool = Field(default=True, title="Run batches inside the app")
    ui_live_refresh_s: float = positive(2.0, "Live refresh (s)", most=3600)
    ui_errors_page_size: int = positive(50, "Errors per page", most=1000)
    # the other paged lists: rows of a table (Recovery's conversations, error groups), cards of a list
    # (batches on Batches and Recovery, drafts on Generate and Recovery)
    ui_table_page_size: int = positive(20, "Rows per page of the other tables", most=500)
    ui_cards_page_size: int = positive(10, "Cards per page of a list", most=100)
    # a single generation whose page has not looked at it this long is stopped (its draft stays
    # resumable): the tab was closed. Long enough for a hidden tab, whose timers browsers slow to 1/min
    ui_generation_unwatched_s: float = positive(120.0, "Stop a generation nobody watches after (s)", most=3600)
    # Stop waits this long for the generation's next streamed piece, where it ends (a retry wait may be longer)
    ui_generation_stop_wait_s: float = positive(5.0, "Longest wait for a stopped generation to end (s)", most=60)
    # Streamlit keeps a download's whole file in memory: a page's download stops at this size,
    # bigger sets go through the CLI export, which streams to a file
    ui_download_max_mb: int = positive(20, "Largest download from a page (MB)", most=40)

    # quality gate (core.quality): checks, heuristic score, near-duplicates and routing
    # each message's length, in characters, outside which its check fails
    quality_min_turn_chars: int = positive(2, "Shortest message a check accepts (characters)", most=100_000)
    quality_max_turn_chars: int = positive(4_000, "Longest message a check accepts (characters)", most=1_000_000)
    # heavy repetition: the share of a conversation's sentences that repeat an earlier one, or of its
    # word n-grams that occur more than once, above which the check fails
    quality_repetition_max_share: float = fraction(0.3, "Largest share of repeated sentences or n-grams")
    quality_repetition_ngram_words: int = positive(4, "Words per n-gram the repetition check counts", most=50)
    # near-duplicates: MinHash over word shingles of this many words, signatures of this many hash values
    quality_shingle_words: int = positive(5, "Words per shingle (near-duplicates)", most=50)
    quality_minhash_perms: int = whole(128, "MinHash hash values per conversation", least=16, most=1024)
    quality_near_duplicate_threshold: float = fraction(0.8, "Similarity that makes a near-duplicate",
                                                       above_zero=True)
    # a flagged pair shows its longest shared passage, redacted, then cut to this
    quality_passage_max_chars: int = positive(300, "Longest shared passage shown (characters)", most=10_000)
    # routing: accepted at or above the first, needs review from the second, regenerated below it
    quality_accept_score: int = whole(85, "Score that accepts a conversation", least=0, most=100)
    quality_review_score: int = whole(60, "Score below which a conversation is generated again",
                                      least=0, most=100)
    # times one batch item is generated again after routing sent it back; then it waits for review
    quality_max_regenerations: int = non_negative(2, "Regenerations per batch item", most=20, zero="never")
    # the in-memory near-duplicate index of each process: loaded in chunks, caught up this often, reading
    # back this far past its last row (a transaction stamped earlier may commit later)
    quality_index_chunk_rows: int = positive(5_000, "Signatures read per chunk", most=1_000_000)
    quality_index_refresh_s: float = non_negative(10.0, "Near-duplicate index catch-up interval (s)", most=86_400,
                                                  zero="at every conversation")
    quality_index_overlap_s: float = non_negative(300.0, "Near-duplicate index catch-up overlap (s)", most=86_400)
    # the optional LLM judge (core.quality.judge): answers that are not its JSON are asked again this often
    quality_judge_invalid_retries: int = non_negative(2, "Retries of a malformed judge answer", most=20)
    quality_judge_max_tokens: int = positive(1_024, "Longest judge answer (tokens)", most=128_000)
    # trainer-ready exports and dataset health (core.datasets)
    # a dataset card's tables (persona x emotion x topic, templates, models) show at most this many rows,
    # then how many more there are
    dataset_card_max_rows: int = positive(200, "Most rows of one table in a dataset card", most=100_000)
    # distinct-1/2 of assistant turns keep the smallest this many n-gram hashes (8 bytes each): exact while a set
    # has fewer distinct n-grams, else a k-minimum-values estimate about 1/sqrt(k) off (0.2 % at 200,000)
    dataset_health_sketch_size: int = positive(200_000, "N-grams kept for distinct-n (dataset health)",
                                               most=100_000_000)
    # the Conversations page and a batch's detail count their dataset health again at most this often
    ui_health_refresh_s: float = positive(30.0, "Dataset health refresh (s)", most=3600)

    # offline sandbox
    sandbox_fault_rate: float = fraction(0.0, "Sandbox fault rate")
    sandbox_rpm: int = non_negative(0, "Sandbox requests per minute", most=1_000_000, zero="no limit")
    sandbox_tpm: int = non_negative(0, "Sandbox tokens per minute", most=1_000_000_000, zero="no limit")
    sandbox_latency_ms: int = non_negative(40, "Sandbox latency (ms)", most=600_000)
    sandbox_tokens_per_s: float = positive(400.0, "Sandbox speed (tokens/s)", most=1_000_000)
    sandbox_seed: int = whole(0, "Sandbox seed", least=0, most=2**32 - 1)
    # the sandbox's Message Batches: how long a batch takes, and shares of its requests that do not succeed
    sandbox_batch_processing_s: float = non_negative(0.5, "Sandbox message batch processing time (s)", most=3600)
    sandbox_batch_error_rate: float = fraction(0.0, "Sandbox batch requests errored, retryable")
    sandbox_batch_invalid_rate: float = fraction(0.0, "Sandbox batch requests errored, invalid request")
    sandbox_batch_expired_rate: float = fraction(0.0, "Sandbox batch requests expired")
    sandbox_batch_canceled_rate: float = fraction(0.0, "Sandbox batch requests canceled")

    @classmethod
    def named(cls, name: str) -> str:
        return env_name(name)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings reads the environment and secrets.toml (_NamedSource) once; a copy never re-reads them
        return (init_settings,)

    @field_validator("user_name")
    @classmethod
    def _a_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError(cls.allowed("user_name"))
        return v

    @field_validator("admin_emails")
    @classmethod
    def _emails(cls, v: str) -> str:
        if any("@" not in e or " " in e.strip() for e in v.split(",") if e.strip()):
            raise ValueError(cls.allowed("admin_emails"))
        return v

    @property
    def admin_email_set(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    @field_validator("alert_webhook_url")
    @classmethod
    def _an_http_url(cls, v: str) -> str:
        if v and not _is_http_url(v):
            raise ValueError(cls.allowed("alert_webhook_url"))
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Rules over several settings; each names the setting to change first, then the others it involves."""
        hb, lease = self.heartbeat_interval_s, self.lease_duration_s
        if hb >= lease:
            raise RuleBroken(("heartbeat_interval_s", "lease_duration_s"), lambda n: (
                f"({hb:g} s) must be shorter than {n('lease_duration_s')} ({lease:g} s): a live worker would lose "
                "its lease between two heartbeats."))
        if self.worker_concurrency > self.max_concurrency:
            raise RuleBroken(("worker_concurrency", "max_concurrency"),
                             lambda n: f"must be <= {n('max_concurrency')} ({self.max_concurrency}).")
        if any(c.isspace() or not c.isprintable() for c in self.anthropic_api_key):
            # httpx refuses a header value with a newline as a protocol error, which reads as an outage
            raise RuleBroken(("anthropic_api_key",), lambda n: (
                "contains a space, a line break or another invisible character "
                "(often a trailing newline from copying it); set it again without it."))
        for base, cap in (("retry_backoff_base_s", "retry_backoff_cap_s"),
                          ("db_retry_backoff_base_s", "db_retry_backoff_cap_s")):
            if getattr(self, cap) < getattr(self, base):
                def at_least(n: Callable[[str], str], lower: str = base) -> str:
                    return f"must be >= {n(lower)}."
                raise RuleBroken((cap, base), at_least)
        if self.generation_max_turns < self.generation_min_turns:
            raise RuleBroken(("generation_max_turns", "generation_min_turns"),
                             lambda n: f"must be >= {n('generation_min_turns')}.")
        turns, lo, hi = self.generation_default_turns, self.generation_min_turns, self.generation_max_turns
        if not lo <= turns <= hi or turns % 2:
            raise RuleBroken(("generation_default_turns", "generation_min_turns", "generation_max_turns"), lambda n: (
                f"({turns}) must be an even number from {n('generation_min_turns')} ({lo}) to "
                f"{n('generation_max_turns')} ({hi})."))
        if self.quality_review_score > self.quality_accept_score:
            raise RuleBroken(("quality_review_score", "quality_accept_score"),
                             lambda n: f"must be <= {n('quality_accept_score')} ({self.quality_accept_score}).")
        if self.quality_min_turn_chars > self.quality_max_turn_chars:
            raise RuleBroken(("quality_min_turn_chars", "quality_max_turn_chars"),
                             lambda n: f"must be <= {n('quality_max_turn_chars')}.")
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise RuleBroken(("database_url",), lambda n: (
                "must start with sqlite:// or postgresql+psycopg:// (Supabase: use the session pooler URL)."))
        return self

    # ---- derived -------------------------------------------------------------------
    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir) / 'studio.db'}"

    @property
    def provider(self) -> str:
        """'endpoint' (ANTHROPIC_BASE_URL), 'claude' (API key) or 'sandbox' (neither)."""
        if self.anthropic_base_url:
            return "endpoint"
        if self.anthropic_api_key:
            return "claude"
        return "sandbox"

    def estimated_tokens(self, text: str) -> int:
        """Tokens `text` is expected to take before a reply says: characters / estimate_chars_per_token."""
        return math.ceil(len(text) / self.estimate_chars_per_token)


def default(name: str) -> Any:
    """The declared default of setting `name` (what it is when nothing sets it)."""
    return Settings.model_fields[name].default


def _sqlite_folder(url: str) -> Path | None:
    """The folder of the SQLite file an explicit DATABASE_URL names; None for Postgres, memory or unset."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url  # only when a SQLite URL is configured
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:  # the engine factory reports a malformed URL
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).parent


class _NamedSource(PydanticBaseSettingsSource):
    """The values one place outside the app gives, each under its variable's name (or, if allowed, the field's)."""

    def __init__(self, values: Mapping[str, Any], *, by_field_name: bool = False) -> None:
        super().__init__(Settings)
        self.values = values
        self.by_field_name = by_field_name

    def _key(self, field_name: str) -> str | None:
        names = (env_name(field_name), field_name) if self.by_field_name else (env_name(field_name),)
        return next((name for name in names if name in self.values), None)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        key = self._key(field_name)
        return (None, field_name, False) if key is None else (self.values[key], key, False)

    def __call__(self) -> dict[str, Any]:
        return {name: self.values[key] for name in Settings.model_fields if (key := self._key(name)) is not None}


def _secrets_file() -> dict[str, Any]:
    path = Path(os.environ.get("STUDIO_SECRETS_FILE", ROOT / ".streamlit" / "secrets.toml"))
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path.name} cannot be read: {exc}") from exc


def auth_secrets() -> dict[str, Any]:
    """The `[auth]` table of secrets.toml (Streamlit's login: client and cookie secrets), or {}."""
    try:
        auth = _secrets_file().get("auth")
    except SettingsError:
        return {}
    return auth if isinstance(auth, dict) else {}


def _outside_values(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The raw values the environment, then secrets.toml, give for each field they set."""
    env = os.environ if environ is None else environ
    secrets = _secrets_file()
    removed = [name for name in _REMOVED if name in env or name in secrets]
    if removed:
        raise SettingsError("\n".join(f"Setting {name} no longer exists: {_REMOVED[name]}. Unset it."
                                      for name in removed))
    return {**_NamedSource(secrets, by_field_name=True)(), **_NamedSource(env)()}


def set_outside_the_app(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Fields the environment or secrets.toml sets: for OPERATOR_FIELDS, nothing saved in the app overrides them."""
    return frozenset(_outside_values(environ))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, then secrets.toml, then defaults; validate them."""
    settings = Settings(**_outside_values(environ))
    # checked at start only (the file system is not part of a value): SQLite would create the file
    # silently, and the folder too where the engine factory makes the default data dir
    folder = _sqlite_folder(settings.database_url)
    if folder is not None and not folder.is_dir():
        raise SettingsError(
            f"Setting DATABASE_URL names a SQLite file in a folder that does not exist ({folder}); "
            "create the folder first or fix the path."
        )
    return settings


_lock = threading.Lock()
_current: Settings | None = None


def get_settings() -> Settings:
    """The settings in force (loaded once, replaced by `override_settings`)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = load_settings()
    return _current


def reload_settings() -> Settings:
    global _current
    with _lock:
        _current = load_settings()
    return _current


def override_settings(**changes: Any) -> Settings:
    """Apply validated changes to the settings in force, process-wide, without a restart."""
    global _current
    with _lock:
        base = _current if _current is not None else load_settings()
        _current = base.replace(**changes)
    return _current
