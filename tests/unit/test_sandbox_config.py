"""The sandbox's config: the same kind of model as the app's settings, read and refused the same way."""

from __future__ import annotations

import pytest

from core.llm.sandbox import SandboxConfig, SandboxConfigError


def test_a_bad_value_is_refused_naming_the_setting_and_its_bound():
    """Built directly or by replace(), a value out of bounds raises SandboxConfigError saying what is allowed."""
    with pytest.raises(SandboxConfigError, match=r"sandbox setting rate_500 = 1\.5 .* a fraction from 0 to 1"):
        SandboxConfig(rate_500=1.5)
    with pytest.raises(SandboxConfigError, match="port .* from 0 to 65,535"):
        SandboxConfig().replace(port="70000")
    with pytest.raises(SandboxConfigError, match="latency_ms .* not true or false"):
        SandboxConfig().replace(latency_ms=True)


def test_text_reads_like_the_app_settings_and_an_empty_optional_is_none():
    """"none", "" and null clear an optional value; whole numbers may carry underscores."""
    config = SandboxConfig().replace(force_status="529", rpm="1_200")
    assert (config.force_status, config.rpm) == (529, 1200)
    assert config.replace(force_status="none").force_status is None
    assert config.replace(force_status="").force_status is None


def test_the_admin_view_round_trips():
    """to_dict() gives every field, and feeding it back makes an equal config."""
    config = SandboxConfig(seed=3, fault_rate=0.25)
    assert SandboxConfig(**config.to_dict()) == config
    assert set(config.to_dict()) == set(SandboxConfig.model_fields)


def test_batch_outcome_shares_may_not_add_up_to_more_than_all_requests():
    """The four Message Batches outcome rates are checked together, apart from the online fault rates."""
    config = SandboxConfig(batch_error_rate=0.5, batch_invalid_rate=0.2, batch_expired_rate=0.2,
                           batch_canceled_rate=0.1, fault_rate=1.0)
    assert sum(config.batch_outcome_rates().values()) == pytest.approx(1.0)
    with pytest.raises(SandboxConfigError, match="batch outcome rates add up to more than 1"):
        config.replace(batch_expired_rate=0.3)


def test_the_app_settings_set_the_sandbox_batch_knobs(monkeypatch):
    """STUDIO_SANDBOX_BATCH_* environment variables reach the config the app's sandbox starts with."""
    from core.config import reload_settings

    monkeypatch.setenv("STUDIO_SANDBOX_BATCH_ERROR_RATE", "0.1")
    monkeypatch.setenv("STUDIO_SANDBOX_BATCH_PROCESSING_S", "2")
    reload_settings()
    config = SandboxConfig.from_settings()
    assert (config.batch_error_rate, config.batch_processing_s) == (0.1, 2.0)
