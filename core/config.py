"""Settings: one typed object from environment variables, then `.streamlit/secrets.toml`, then defaults.

Every number the design names lives here with a name. Each field is read from the
environment variable of its upper-cased name prefixed with ``STUDIO_`` (for example
``STUDIO_RETRY_MAX_ATTEMPTS``), except the few well-known names in ``_PLAIN_ENV``
(``DATABASE_URL``, ``ANTHROPIC_API_KEY``, ...). An invalid value fails at start with a
message naming the setting.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_origin, get_type_hints
from urllib.parse import urlsplit

__all__ = ["OPERATOR_FIELDS", "ROOT", "Settings", "SettingsError", "auth_secrets", "get_settings", "override_settings",
           "reload_settings", "set_outside_the_app"]

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
OPERATOR_FIELDS = frozenset({"anthropic_api_key", "anthropic_base_url", "database_url", "alert_webhook_url"})


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _fraction(v: float) -> bool:
    return 0.0 <= v <= 1.0


def _is_http_url(v: str) -> bool:
    try:
        parts = urlsplit(v)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(host) and v == v.strip()


def _check(check: Any, rule: str) -> dict[str, Any]:
    return {"check": check, "rule": rule}


@dataclass(frozen=True)
class Settings:
    """Typed settings. Field metadata carries the validity rule shown in error messages."""

    # where things live
    environment: str = field(default="production", metadata=_check(
        lambda v: v in ("development", "staging", "production", "test"),
        "one of development, staging, production, test"))
    database_url: str = ""  # empty: sqlite file under data_dir
    data_dir: str = str(ROOT / "data")
    # SQLite page cache per connection (an upper bound, filled on demand). SQLite's default of
    # 2 MB holds little of the error log's ten indexes at a million rows, so every insert
    # re-read index pages from the OS; 0 keeps SQLite's default.
    sqlite_cache_mb: int = field(default=64, metadata=_check(_non_negative, "a whole number >= 0 (0: SQLite's default)"))
    # how long a SQLite statement waits for another connection's lock before failing "database is locked"
    sqlite_busy_timeout_s: float = field(default=30.0, metadata=_check(_non_negative, "a number >= 0"))
    user_name: str = field(default="analyst", metadata=_check(lambda v: bool(v.strip()), "a name, not empty"))

    # model access
    anthropic_api_key: str = ""
    anthropic_base_url: str = ""
    default_model: str = "claude-sonnet-5-5"
    request_timeout_s: float = field(default=120.0, metadata=_check(_positive, "a number > 0"))
    max_output_tokens: int = field(default=4096, metadata=_check(_positive, "a whole number > 0"))

    # retries (tenacity): full jitter, exponential
    retry_max_attempts: int = field(default=4, metadata=_check(_positive, "a whole number > 0"))
    retry_backoff_base_s: float = field(default=1.0, metadata=_check(_non_negative, "a number >= 0"))
    retry_backoff_cap_s: float = field(default=32.0, metadata=_check(_non_negative, "a number >= 0"))
    retry_after_cap_s: float = field(default=120.0, metadata=_check(_non_negative, "a number >= 0"))
    retry_instant: bool = False  # tests: waits become zero
    # opt-in for an integration test that measures a real retry-after wait while backoff stays instant
    retry_after_when_instant: bool = False
    generation_invalid_retries: int = field(default=2, metadata=_check(_non_negative, "a whole number >= 0"))
    # one conversation: messages counted one by one (user and assistant), even so it ends on the assistant
    generation_min_turns: int = field(default=2, metadata=_check(_positive, "a whole number > 0"))
    generation_max_turns: int = field(default=40, metadata=_check(_positive, "a whole number > 0"))
    generation_max_field_chars: int = field(default=500, metadata=_check(_positive, "a whole number > 0"))
    generation_max_template_chars: int = field(default=20_000, metadata=_check(_positive, "a whole number > 0"))
    # the rate limiter's input-token estimate before a call (corrected by the reply's usage)
    estimate_chars_per_token: float = field(default=3.5, metadata=_check(_positive, "a number > 0"))
    estimate_tokens_per_message: int = field(default=8, metadata=_check(_non_negative, "a whole number >= 0"))
    db_retry_max_attempts: int = field(default=4, metadata=_check(_positive, "a whole number > 0"))
    # Postgres ends a session idle inside a transaction this long (0: never): our transactions take
    # milliseconds, so it is a worker stopped (SIGSTOP) or hung mid-transaction, whose row locks
    # would otherwise hold up every other worker for as long as it stays stopped
    db_idle_in_transaction_timeout_s: float = field(default=60.0, metadata=_check(_non_negative, "a number >= 0"))
    db_retry_backoff_base_s: float = field(default=0.05, metadata=_check(_non_negative, "a number >= 0"))
    db_retry_backoff_cap_s: float = field(default=2.0, metadata=_check(_non_negative, "a number >= 0"))

    # circuit breakers
    breaker_failure_threshold: int = field(default=5, metadata=_check(_positive, "a whole number > 0"))
    breaker_window_s: float = field(default=60.0, metadata=_check(_positive, "a number > 0"))
    # events within one slot share one entry of the limiter's and breakers' windows, which so stay
    # at window / slot entries at any call rate (one entry per call held ~50k, ~6 MB, at 200 items/s)
    resilience_window_slot_s: float = field(default=0.25, metadata=_check(_positive, "a number > 0"))
    breaker_cooldown_s: float = field(default=30.0, metadata=_check(_non_negative, "a number >= 0"))
    # a breaker opened by dropped or refused connections (which reconnecting fixes) probes after
    # this long, doubling at each re-open up to breaker_cooldown_s
    breaker_reconnect_cooldown_s: float = field(default=1.0, metadata=_check(_non_negative, "a number >= 0"))
    # a breaker opens only when failures are also this share of the calls in the window
    breaker_failure_ratio: float = field(default=0.5, metadata=_check(_fraction, "a fraction from 0 to 1"))
    breaker_success_threshold: int = field(default=2, metadata=_check(_positive, "a whole number > 0"))
    breaker_half_open_max_calls: int = field(default=1, metadata=_check(_positive, "a whole number > 0"))

    # rate limiting (see core/resilience/_limiter.py for what each number does)
    rate_limit_rpm: int = field(default=50, metadata=_check(_positive, "a whole number > 0"))
    rate_limit_input_tpm: int = field(default=40_000, metadata=_check(_positive, "a whole number > 0"))
    rate_limit_output_tpm: int = field(default=16_000, metadata=_check(_positive, "a whole number > 0"))
    # answers whose request slot is given back to the limiter. Empty by default: the API counts a
    # request it answered with a 429, 5xx or 529 against the limit, so refunding it overshoots
    rate_limit_refund_statuses: tuple[int, ...] = ()
    # bucket capacity in seconds of the rate: at most this much is sent at once. Kept under the
    # upstream's own burst allowance (about a second of its rate) so pacing never draws a 429
    rate_limit_burst_s: float = field(default=0.5, metadata=_check(_positive, "a number > 0"))
    # 429s without rate-limit headers slow everyone only when sustained: at least _sustained_min
    # of them and _sustained_share of the answers in the last _sustained_window_s
    rate_limit_sustained_window_s: float = field(default=10.0, metadata=_check(_positive, "a number > 0"))
    rate_limit_sustained_share: float = field(default=0.15, metadata=_check(
        lambda v: 0.0 < v <= 1.0, "a fraction above 0, at most 1"))
    rate_limit_sustained_min: int = field(default=3, metadata=_check(_positive, "a whole number > 0"))
    # a cut multiplies the rate by decrease_factor (at most one per relax_after_s); each quiet
    # relax_after_s adds relax_step back, so the configured rate returns within seconds
    rate_limit_decrease_factor: float = field(default=0.8, metadata=_check(  # 1.0: never slow down
        lambda v: 0.0 < v <= 1.0, "a fraction above 0, at most 1"))
    rate_limit_min_factor: float = field(default=0.25, metadata=_check(
        lambda v: 0.0 < v <= 1.0, "a fraction above 0, at most 1"))
    rate_limit_relax_step: float = field(default=0.1, metadata=_check(_fraction, "a fraction from 0 to 1"))
    rate_limit_relax_after_s: float = field(default=1.0, metadata=_check(_positive, "a number > 0"))
    # a call waiting longer than this for the limiter is recorded in the error log and shown on its batch
    rate_limit_visible_wait_s: float = field(default=10.0, metadata=_check(_positive, "a number > 0"))

    # drafts, batches, workers
    autosave_interval_s: float = field(default=5.0, metadata=_check(_positive, "a number > 0"))
    lease_duration_s: float = field(default=30.0, metadata=_check(_positive, "a number > 0"))
    heartbeat_interval_s: float = field(default=10.0, metadata=_check(_positive, "a number > 0"))
    worker_concurrency: int = field(default=4, metadata=_check(_positive, "a whole number > 0"))
    # the most parallel items one batch or one worker may ask for (a bound on input, not a default)
    max_concurrency: int = field(default=64, metadata=_check(_positive, "a whole number > 0"))
    batch_name_max_chars: int = field(default=200, metadata=_check(_positive, "a whole number > 0"))
    # the most rows a list command prints at once (batch list --limit)
    list_max_rows: int = field(default=1_000, metadata=_check(_positive, "a whole number > 0"))
    # the furthest back a span like 7d may reach (errors --since, demo seed-errors --days)
    time_span_max_days: int = field(default=36_500, metadata=_check(_positive, "a whole number > 0"))
    worker_poll_interval_s: float = field(default=1.0, metadata=_check(_positive, "a number > 0"))
    item_max_attempts: int = field(default=3, metadata=_check(_positive, "a whole number > 0"))
    # deaths of the worker with the item in flight (crash, kill -9, stopped past its lease), counted
    # apart from item_max_attempts; after the first, the item runs alone (see core.batches.leases),
    # so reaching this many means it was alone in flight at the others: failed as poison
    item_max_lost_attempts: int = field(default=3, metadata=_check(_positive, "a whole number > 0"))
    batch_max_items: int = field(default=100_000, metadata=_check(_positive, "a whole number > 0"))
    upload_max_bytes: int = field(default=10 * 1024 * 1024, metadata=_check(_positive, "a whole number > 0"))
    draft_ttl_hours: float = field(default=24.0, metadata=_check(_positive, "a number > 0"))
    draft_grace_days: float = field(default=7.0, metadata=_check(_non_negative, "a number >= 0"))
    orphan_draft_minutes: float = field(default=30.0, metadata=_check(_positive, "a number > 0"))
    # batches: live throughput is measured over this trailing window
    batch_throughput_window_s: float = field(default=300.0, metadata=_check(_positive, "a number > 0"))
    # SIGTERM: in-flight items get this long to finish before they go back to pending
    worker_shutdown_grace_s: float = field(default=5.0, metadata=_check(_non_negative, "a number >= 0"))
    # a worker with nothing to do waits this long before probing an open breaker again at the latest
    worker_breaker_probe_max_s: float = field(default=60.0, metadata=_check(_positive, "a number > 0"))
    checkpoint_retention_days: float = field(default=7.0, metadata=_check(_non_negative, "a number >= 0"))
    # long operations without an items table (resolve a group, retention) commit this many rows per
    # transaction with their checkpoint, so an interrupted one resumes there (core.store.resumable)
    checkpoint_chunk_rows: int = field(default=5000, metadata=_check(_positive, "a whole number > 0"))
    csv_max_value_chars: int = field(default=2_000, metadata=_check(_positive, "a whole number > 0"))
    # cost estimates before a batch starts: expected output tokens per message of a conversation
    estimate_output_tokens_per_turn: int = field(default=80, metadata=_check(_positive, "a whole number > 0"))
    # every worker runs the recovery cleanup (expired drafts, old checkpoints, error-log retention)
    # this often, the first time one interval after it starts; 0 turns it off
    cleanup_interval_s: float = field(default=3600.0, metadata=_check(_non_negative, "a number >= 0 (0: off)"))

    # error log
    retention_days_error: int = field(default=180, metadata=_check(_positive, "a whole number > 0"))
    retention_days_other: int = field(default=30, metadata=_check(_positive, "a whole number > 0"))
    log_sample_rate_debug: float = field(default=0.1, metadata=_check(_fraction, "a fraction from 0 to 1"))
    log_sample_rate_info: float = field(default=1.0, metadata=_check(_fraction, "a fraction from 0 to 1"))
    log_writer_batch_size: int = field(default=500, metadata=_check(_positive, "a whole number > 0"))
    # when the writer finds a deep queue it commits up to this many rows per transaction (at least
    # log_writer_batch_size): fewer commits, and a hot index page is written to the WAL once, not per 500 rows
    log_writer_max_batch_rows: int = field(default=5000, metadata=_check(_positive, "a whole number > 0"))
    log_writer_interval_s: float = field(default=0.2, metadata=_check(_positive, "a number > 0"))
    # While record() calls keep coming (a gap shorter than log_writer_linger_ms), the writer waits
    # instead of taking the GIL from their threads to shape rows; it writes once the burst pauses,
    # after log_writer_max_linger_s at most, at half of log_queue_max, or when flush() asks. 0: off.
    log_writer_linger_ms: float = field(default=2.0, metadata=_check(_non_negative, "a number >= 0"))
    log_writer_max_linger_s: float = field(default=0.25, metadata=_check(_non_negative, "a number >= 0"))
    log_queue_max: int = field(default=100_000, metadata=_check(_positive, "a whole number > 0"))
    log_ring_size: int = field(default=100, metadata=_check(_positive, "a whole number > 0"))
    log_context_max_chars: int = field(default=8000, metadata=_check(_positive, "a whole number > 0"))
    log_text_max_chars: int = field(default=20_000, metadata=_check(_positive, "a whole number > 0"))
    # a batch's status reason, an item's last error, a draft's error message: redacted, then cut to this
    stored_reason_max_chars: int = field(default=2000, metadata=_check(_positive, "a whole number > 0"))
    log_spool_retry_s: float = field(default=5.0, metadata=_check(_non_negative, "a number >= 0"))
    log_shutdown_timeout_s: float = field(default=5.0, metadata=_check(_non_negative, "a number >= 0"))
    log_search_max_chars: int = field(default=200, metadata=_check(_positive, "a whole number > 0"))
    log_page_size_max: int = field(default=500, metadata=_check(_positive, "a whole number > 0"))
    log_export_batch_rows: int = field(default=2000, metadata=_check(_positive, "a whole number > 0"))
    log_seed_chunk_rows: int = field(default=20_000, metadata=_check(_positive, "a whole number > 0"))
    log_seed_max_rows: int = field(default=10_000_000, metadata=_check(_positive, "a whole number > 0"))
    log_seed_sqlite_cache_mb: int = field(default=512, metadata=_check(_positive, "a whole number > 0"))
    alert_webhook_url: str = field(default="", metadata=_check(
        lambda v: v == "" or _is_http_url(v), "an http:// or https:// URL with a host (or empty: no alerts)"))
    alert_webhook_min_interval_s: float = field(default=60.0, metadata=_check(_non_negative, "a number >= 0"))
    alert_poll_interval_s: float = field(default=5.0, metadata=_check(_positive, "a number > 0"))
    alert_webhook_timeout_s: float = field(default=5.0, metadata=_check(_positive, "a number > 0"))

    # the app (Streamlit pages)
    ui_background_worker: bool = True  # run batches in a thread of the app process
    ui_live_refresh_s: float = field(default=2.0, metadata=_check(_positive, "a number > 0"))
    ui_errors_page_size: int = field(default=50, metadata=_check(_positive, "a whole number > 0"))

    # offline sandbox
    sandbox_fault_rate: float = field(default=0.0, metadata=_check(_fraction, "a fraction from 0 to 1"))
    sandbox_rpm: int = field(default=0, metadata=_check(_non_negative, "a whole number >= 0 (0: no limit)"))
    sandbox_tpm: int = field(default=0, metadata=_check(_non_negative, "a whole number >= 0 (0: no limit)"))
    sandbox_latency_ms: int = field(default=40, metadata=_check(_non_negative, "a whole number >= 0"))
    sandbox_tokens_per_s: float = field(default=400.0, metadata=_check(_positive, "a number > 0"))
    sandbox_seed: int = 0

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

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with `changes` applied (values may be strings, as from a form)."""
        hints = get_type_hints(Settings)
        converted = {k: _convert(k, hints[k], v) for k, v in changes.items()}
        new = dataclasses.replace(self, **converted)
        new.validate()
        return new

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # inf and NaN pass every comparison the checks make (NaN fails them all, inf none)
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingsError(f"Setting {env_name(f.name)} = {value!r} is invalid: it must be a finite number.")
            check = f.metadata.get("check")
            if check is not None and not check(value):
                shown = "(hidden)" if f.name in OPERATOR_FIELDS else repr(value)
                raise SettingsError(
                    f"Setting {env_name(f.name)} = {shown} is invalid: it must be {f.metadata['rule']}."
                )
        if self.heartbeat_interval_s >= self.lease_duration_s:
            raise SettingsError(
                f"Setting {env_name('heartbeat_interval_s')} ({self.heartbeat_interval_s:g} s) must be shorter than "
                f"{env_name('lease_duration_s')} ({self.lease_duration_s:g} s): a live worker would lose its lease "
                "between two heartbeats."
            )
        if self.worker_concurrency > self.max_concurrency:
            raise SettingsError(
                f"Setting {env_name('worker_concurrency')} must be <= {env_name('max_concurrency')} "
                f"({self.max_concurrency})."
            )
        if any(c.isspace() or not c.isprintable() for c in self.anthropic_api_key):
            # httpx refuses a header value with a newline as a protocol error, which reads as an outage
            raise SettingsError(
                "Setting ANTHROPIC_API_KEY contains a space, a line break or another invisible character "
                "(often a trailing newline from copying it); set it again without it."
            )
        if self.retry_backoff_cap_s < self.retry_backoff_base_s:
            raise SettingsError(
                f"Setting {env_name('retry_backoff_cap_s')} must be >= {env_name('retry_backoff_base_s')}."
            )
        if self.generation_max_turns < self.generation_min_turns:
            raise SettingsError(
                f"Setting {env_name('generation_max_turns')} must be >= {env_name('generation_min_turns')}."
            )
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError(
                "Setting DATABASE_URL must start with sqlite:// or postgresql+psycopg:// "
                "(Supabase: use the session pooler URL)."
            )


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


def env_name(name: str) -> str:
    """The environment variable that sets field `name`."""
    return _PLAIN_ENV.get(name, f"STUDIO_{name.upper()}")


def _convert(name: str, kind: Any, raw: Any) -> Any:
    if get_origin(kind) is tuple:  # a list of whole numbers: "429, 503" or [429, 503]
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        try:
            return tuple(int(str(item).strip()) for item in items if str(item).strip())
        except ValueError:
            raise SettingsError(f"Setting {env_name(name)} = {raw!r} is invalid: it must be whole numbers "
                                "separated by commas.") from None
    if not isinstance(raw, str) or kind is str:
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        return raw
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text.replace("_", ""))
        if kind is float:
            return float(text)
    except ValueError:
        expected = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
        raise SettingsError(f"Setting {env_name(name)} = {raw!r} is invalid: it must be {expected}.") from None
    return raw


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
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = env_name(f.name)
        for source, name in ((env, key), (secrets, key), (secrets, f.name)):
            if name in source:
                values[f.name] = source[name]
                break
    return values


def set_outside_the_app(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Fields the environment or secrets.toml sets: for OPERATOR_FIELDS, nothing saved in the app overrides them."""
    return frozenset(_outside_values(environ))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, then secrets.toml, then defaults; validate them."""
    hints = get_type_hints(Settings)
    values = {name: _convert(name, hints[name], raw) for name, raw in _outside_values(environ).items()}
    settings = Settings(**values)
    settings.validate()
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
