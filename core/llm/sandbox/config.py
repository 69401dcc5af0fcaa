"""SandboxConfig: every knob of the sandbox, validated, changeable while the server runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

__all__ = ["FAULT_STATUSES", "SandboxConfig", "SandboxConfigError"]

# fault_rate is spread evenly over these statuses
FAULT_STATUSES = (429, 500, 503, 529)

_RATE_FIELDS = (
    "fault_rate",
    "rate_429",
    "rate_500",
    "rate_503",
    "rate_529",
    "rate_slow",
    "rate_disconnect",
    "rate_stream_cut",
    "rate_stream_error",
    "rate_malformed_json",
    "rate_invalid_conversation",
)
_NON_NEGATIVE = (
    "latency_ms",
    "rpm",
    "input_tpm",
    "output_tpm",
    "slow_s",
    "retry_after_s",
    "batch_processing_s",
    "idle_timeout_s",
)


class SandboxConfigError(ValueError):
    """A sandbox setting has an unusable value; the message names it."""


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox answers. Immutable: `replace()` makes a validated copy, swapped in atomically."""

    seed: int = 0
    host: str = "127.0.0.1"  # loopback only: the sandbox is a test double, never a public server
    port: int = 0  # 0: a free port chosen by the OS
    latency_ms: int = 40  # before the first byte of an answer
    tokens_per_s: float = 400.0  # generation speed, streaming and not
    # real limits, token buckets refilled continuously (0 = no limit)
    rpm: int = 0
    input_tpm: int = 0
    output_tpm: int = 0
    # injected faults: each is a probability per /v1/messages call
    fault_rate: float = 0.0  # spread evenly over 429, 500, 503 and 529
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_529: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 30.0  # how long a slow answer waits before it starts
    rate_disconnect: float = 0.0  # connection closed before any header
    rate_stream_cut: float = 0.0  # body cut mid-message
    rate_stream_error: float = 0.0  # streaming: an `error` event (overloaded) after some deltas, on a 200
    rate_malformed_json: float = 0.0  # 200 with a body that is not JSON
    rate_invalid_conversation: float = 0.0  # 200 with text that breaks the conversation format
    retry_after_s: float = 1.0  # retry-after sent with injected 429 and 529
    force_status: int | None = None  # every /v1/messages call fails with this status
    force_message: str | None = None  # the error message for force_status
    force_error_code: str | None = None  # error.details.error_code, e.g. "enforced_spend_limit_reached"
    api_key_required: str | None = None  # when set, x-api-key must equal it, else 401
    batch_processing_s: float = 0.5  # a message batch ends this long after creation
    idle_timeout_s: float = 30.0  # an idle keep-alive connection is closed after this

    def replace(self, **changes: Any) -> SandboxConfig:
        """A validated copy with `changes` applied; values may be strings (from a CLI or JSON)."""
        hints = get_type_hints(SandboxConfig)
        unknown = sorted(set(changes) - set(hints))
        if unknown:
            raise SandboxConfigError(f"unknown sandbox setting(s): {', '.join(unknown)}")
        converted = {name: _convert(name, hints[name], value) for name, value in changes.items()}
        new = dataclasses.replace(self, **converted)
        new.validate()
        return new

    def validate(self) -> None:
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SandboxConfigError(f"sandbox setting {name} = {value!r} must be a fraction from 0 to 1")
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if value < 0:
                raise SandboxConfigError(f"sandbox setting {name} = {value!r} must be >= 0")
        if self.tokens_per_s <= 0:
            raise SandboxConfigError(f"sandbox setting tokens_per_s = {self.tokens_per_s!r} must be > 0")
        if not 0 <= self.port <= 65535:
            raise SandboxConfigError(f"sandbox setting port = {self.port!r} must be from 0 to 65535")
        if self.force_status is not None and not 400 <= self.force_status <= 599:
            raise SandboxConfigError(
                f"sandbox setting force_status = {self.force_status!r} must be an HTTP error status (400-599)"
            )
        if self.total_fault_rate() > 1.0 + 1e-9:
            raise SandboxConfigError("the sandbox fault rates add up to more than 1")

    def total_fault_rate(self) -> float:
        return sum(getattr(self, name) for name in _RATE_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

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
        )
        return base.replace(**overrides) if overrides else base


def _convert(name: str, kind: Any, raw: Any) -> Any:
    """Coerce a value to the field's type; None is allowed only for optional fields."""
    optional = kind in (int | None, str | None)
    if raw is None or (optional and isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        if optional:
            return None
        raise SandboxConfigError(f"sandbox setting {name} cannot be empty")
    base = int if kind in (int, int | None) else float if kind is float else str
    if isinstance(raw, bool):
        raise SandboxConfigError(f"sandbox setting {name} = {raw!r} must be a {base.__name__}")
    try:
        if base is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            return int(raw.strip().replace("_", "")) if isinstance(raw, str) else int(raw)
        if base is float:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise SandboxConfigError(f"sandbox setting {name} = {raw!r} must be a {base.__name__}") from None
