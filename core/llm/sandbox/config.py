"""SandboxConfig: every knob of the sandbox, validated, changeable while the server runs."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from core.settings_model import CheckedModel, fraction, non_negative, positive, whole

__all__ = ["FAULT_STATUSES", "SandboxConfig", "SandboxConfigError"]

# fault_rate is spread evenly over these statuses
FAULT_STATUSES = (429, 500, 503, 529)


class SandboxConfigError(ValueError):
    """A sandbox setting has an unusable value; the message names it."""


class SandboxConfig(CheckedModel):
    """How the sandbox answers. Immutable: `replace()` makes a validated copy, swapped in atomically."""

    error: ClassVar[type[ValueError]] = SandboxConfigError

    seed: int = whole(0, "Seed", least=0, most=2**32 - 1)
    # loopback only: the sandbox is a test double, never a public server
    host: str = Field(default="127.0.0.1", title="Host")
    port: int = Field(default=0, ge=0, le=65535, title="Port",
                      json_schema_extra={"zero": "a free port chosen by the OS"})
    latency_ms: int = non_negative(40, "Wait before the first byte of an answer (ms)", most=600_000)
    tokens_per_s: float = positive(400.0, "Generation speed, streaming and not (tokens/s)", most=1_000_000)
    # real limits, token buckets refilled continuously
    rpm: int = non_negative(0, "Requests per minute", most=1_000_000, zero="no limit")
    input_tpm: int = non_negative(0, "Input tokens per minute", most=1_000_000_000,
                                    zero="no limit")
    output_tpm: int = non_negative(0, "Output tokens per minute", most=1_000_000_000,
                                     zero="no limit")
    # injected faults: each is a probability per /v1/messages call
    fault_rate: float = fraction(0.0, "Faults, spread evenly over 429, 500, 503 and 529")
    rate_429: float = fraction(0.0, "429 rate limited")
    rate_500: float = fraction(0.0, "500 server error")
    rate_503: float = fraction(0.0, "503 unavailable")
    rate_529: float = fraction(0.0, "529 overloaded")
    rate_slow: float = fraction(0.0, "Slow answers")
    slow_s: float = non_negative(30.0, "How long a slow answer waits before it starts (s)", most=3600)
    rate_disconnect: float = fraction(0.0, "Connection closed before any header")
    rate_stream_cut: float = fraction(0.0, "Body cut mid-message")
    rate_stream_error: float = fraction(0.0, "Streaming error event (overloaded) after some deltas, on a 200")
    rate_malformed_json: float = fraction(0.0, "200 with a body that is not JSON")
    rate_invalid_conversation: float = fraction(0.0, "200 with text that breaks the conversation format")
    retry_after_s: float = non_negative(1.0, "retry-after sent with injected 429 and 529 (s)", most=3600)
    force_status: int | None = Field(default=None, ge=400, le=599,
                                     title="Every /v1/messages call fails with this status")
    force_message: str | None = Field(default=None, title="The error message for the forced status")
    # error.details.error_code, e.g. "enforced_spend_limit_reached"
    force_error_code: str | None = Field(default=None, title="The error code for the forced status")
    api_key_required: str | None = Field(default=None, title="When set, x-api-key must equal it, else 401")
    batch_processing_s: float = non_negative(0.5, "A message batch ends this long after creation (s)",
                                              most=3600)
    # message batch outcomes: each a share of a batch's requests, drawn per request from the seed,
    # its custom_id and how many times that custom_id was submitted before (a resubmission draws anew)
    batch_error_rate: float = fraction(0.0, "Batch requests errored with a retryable overloaded_error or api_error")
    batch_invalid_rate: float = fraction(0.0, "Batch requests errored with invalid_request_error")
    batch_expired_rate: float = fraction(0.0, "Batch requests expired")
    batch_canceled_rate: float = fraction(0.0, "Batch requests canceled without a cancel")
    # prompt caching: how long an entry written with cache_control lives after its last use
    cache_ttl_5m_s: float = non_negative(300.0, "Life of a 5-minute cache entry (s)", most=86_400)
    cache_ttl_1h_s: float = non_negative(3600.0, "Life of a 1-hour cache entry (s)", most=86_400)
    idle_timeout_s: float = non_negative(30.0, "An idle keep-alive connection is closed after this (s)",
                                          most=3600)

    @classmethod
    def subject(cls, name: str) -> str:
        return f"sandbox setting {name}"

    @model_validator(mode="after")
    def _rates_add_up(self) -> SandboxConfig:
        if self.total_fault_rate() > 1.0 + 1e-9:
            raise ValueError("the sandbox fault rates add up to more than 1")
        if sum(self.batch_outcome_rates().values()) > 1.0 + 1e-9:
            raise ValueError("the sandbox's message batch outcome rates add up to more than 1")
        return self

    def total_fault_rate(self) -> float:
        return sum(value for name, value in self if name == "fault_rate" or name.startswith("rate_"))

    def batch_outcome_rates(self) -> dict[str, float]:
        """Share of batch requests per outcome that is not a success, in the order they are drawn."""
        return {"retryable": self.batch_error_rate, "invalid": self.batch_invalid_rate,
                "expired": self.batch_expired_rate, "canceled": self.batch_canceled_rate}

    @classmethod
    def from_settings(cls, **overrides: Any) -> SandboxConfig:
        """The sandbox the app settings describe (STUDIO_SANDBOX_*), with `overrides` applied."""
        from core.config import get_settings

        s = get_settings()
        base = cls(
            seed=s.sandbox_seed,
            latency_ms=s.sandbox_latency_ms,
            tokens_per_s=s.sandbox_tokens_per_s,
            rpm=s.sandbox_rpm,
            input_tpm=s.sandbox_tpm,
            output_tpm=s.sandbox_tpm,
            fault_rate=s.sandbox_fault_rate,
            batch_processing_s=s.sandbox_batch_processing_s,
            batch_error_rate=s.sandbox_batch_error_rate,
            batch_invalid_rate=s.sandbox_batch_invalid_rate,
            batch_expired_rate=s.sandbox_batch_expired_rate,
            batch_canceled_rate=s.sandbox_batch_canceled_rate,
        )
        return base.replace(**overrides) if overrides else base
