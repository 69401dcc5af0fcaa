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
