"""The Settings page's pieces: model, resilience numbers, sandbox chaos, health checks."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from core import settings_store
from core.batches.service import LIMIT_LABELS, estimate
from core.config import OPERATOR_FIELDS, Settings, SettingsError, default, env_name, get_settings
from core.generation import template_names
from core.llm.pricing import MODELS, model_choices
from core.llm.sandbox.admin import fault_config
from core.store import get_engine, ping
from core.ui.boundaries import report_error, section_key
from core.ui.safe import literal
from core.ui.shell import PROVIDER_TEXT
from core.ui.toasts import success

__all__ = ["CHAOS_MODES", "GROUPS", "apply_chaos", "chaos", "form", "health", "model_prices", "provider"]

# (heading, fields) shown as one form; every field is a plain number or text in Settings
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Model", ("default_model", "max_output_tokens", "request_timeout_s")),
    ("Retries", ("retry_max_attempts", "retry_backoff_base_s", "retry_backoff_cap_s", "retry_after_cap_s")),
    ("Circuit breakers", ("breaker_failure_threshold", "breaker_window_s", "breaker_cooldown_s",
                          "breaker_success_threshold")),
    ("Rate limits", ("rate_limit_rpm", "rate_limit_input_tpm", "rate_limit_output_tpm")),
    ("Drafts and batches", ("autosave_interval_s", "worker_concurrency", "item_max_attempts",
                            "batch_confirm_above_usd")),
    ("Quality gate", ("quality_accept_score", "quality_review_score", "quality_near_duplicate_threshold",
                      "quality_max_regenerations")),
    ("Alerts", ("alert_webhook_url", "alert_webhook_min_interval_s")),
)
_K = "settings"
_TOGETHER = ("The three limits work together: a call goes only when requests, input tokens and output tokens "
             "per minute all have room, so the tightest one sets the pace.")

CHAOS_MODES: dict[str, dict[str, Any]] = {
    "Off": {"fault_rate": 0.0, "force_status": None},
    "Flaky (some calls fail and are retried)": {"force_status": None},
    "Every call overloaded (529, retried)": {"fault_rate": 0.0, "force_status": 529},
    "Every call rejected (401, key invalid)": {"fault_rate": 0.0, "force_status": 401},
}


def _help(name: str) -> str:
    """What the setting allows and its variable, all from its declaration in core.config."""
    return f"Allowed: {Settings.allowed(name)}. Environment variable {env_name(name)}."


def _as_text(value: Any) -> str:
    """A value as a person types it: 120, 0.05, never 120.0 or 1e+06."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _shown_default(name: str) -> str:
    shown = default(name)
    return _as_text(shown) if shown != "" else "empty"


def provider() -> None:
    s = get_settings()

    st.markdown(f"**Provider:** {literal(PROVIDER_TEXT.get(s.provider, s.provider))}")
    st.caption("The API key and endpoint are read from the environment or `.streamlit/secrets.toml` "
               "(ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL); they are never stored in the database.")


def model_prices() -> None:
    rows = [{"model": m.name, "label": m.label, "input $/MTok": m.input_per_mtok, "output $/MTok": m.output_per_mtok,
             "price": m.price_source, "deprecated": m.deprecated} for m in (MODELS[n] for n in model_choices())]
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=240)


def _operator_widget(name: str, current: str, label: str, help_text: str, editable: bool) -> str:
    """A secret-bearing setting: its value never goes to the browser; locked where the operator set it.

    Returns the value to save: the current one when the field is left empty.
    """
    st.text(f"{label}: {settings_store.masked(name, current)}")
    reason = settings_store.refusal(name)
    if reason is not None:
        if editable:  # a person who may not change settings at all was told so once, above the form
            st.caption(literal(reason))
        return current
    entered = st.text_input(f"New {label.lower()}", value="", type="password", key=section_key(_K, name),
                            help=f"{help_text} Leave empty to keep the current value.",
                            placeholder="https://…")
    remove = bool(current) and st.checkbox(f"Remove the {label.lower()}", key=section_key(_K, f"{name}_remove"))
    if remove:
        return ""
    return entered.strip() or current


def _fill_defaults(names: tuple[str, ...]) -> None:
    """Put each field's declared default into its widget; Save and apply then uses them (on_click: before the run)."""
    for name in names:
        st.session_state[section_key(_K, name)] = default(name) if name == "default_model" else _as_text(default(name))
    st.session_state[section_key(_K, "filled")] = len(names)


def _widget(name: str, current: Any, hints: dict[str, Any], editable: bool) -> Any:
    """The field for setting `name`: numbers are typed as text, so "1e6" reaches the model and is refused there.

    Read-only (disabled) for a person who may not change settings.
    """
    key = section_key(_K, name)
    label = Settings.label(name)
    help_text = _help(name)
    value: Any  # text, a flag or a model name, as the field is
    if name in OPERATOR_FIELDS:
        value = _operator_widget(name, str(current), label, help_text, editable)
    else:
        if key not in st.session_state:  # first shown: the value in force; after that, what was typed
            st.session_state[key] = current if name == "default_model" else _as_text(current)
        if name == "default_model":
            options = model_choices(include_deprecated=True)
            value = st.selectbox(label, options, key=key, help=help_text, disabled=not editable,
                                 format_func=lambda n: f"{n} — ${MODELS[n].input_per_mtok:g} / "
                                 f"${MODELS[n].output_per_mtok:g} per MTok")
        else:
            value = st.text_input(label, key=key, help=help_text, disabled=not editable).strip()
        st.caption(f"Default: {literal(_shown_default(name))}")
        st.form_submit_button("Reset to default", key=section_key(_K, f"{name}_reset"), type="tertiary",
                                 icon=":material/restart_alt:", help=f"Fill in the default ({_shown_default(name)})",
                                 on_click=_fill_defaults, args=((name,),), disabled=not editable)
    hints[name] = st.empty()
    return value


def _unchanged(name: str, value: Any, current: Any) -> bool:
    return value == current or (isinstance(value, str) and value == _as_text(current))


def _limits_together() -> None:
    turns = get_settings().generation_default_turns
    binding = estimate(template_names()[0], 1, turns=turns)["binding"]
    allows = " · ".join(f"{LIMIT_LABELS[name]}: ~{per_min:,.0f}" for name, per_min in binding["allows"].items())
    st.caption(f"{_TOGETHER} For a {turns}-message conversation now: {binding['text']} "
               f"(conversations/min each limit allows — {allows}).")


def form() -> None:
    """All tunable numbers in one form; a bad value is named beside its field and nothing is saved."""
    s = get_settings()
    hints: dict[str, Any] = {}
    values: dict[str, Any] = {}
    editable = settings_store.may_change()
    if not editable:
        st.info(settings_store.ADMINS_ONLY, icon=":material/lock:")
    with st.form(section_key(_K, "form")):
        for heading, names in GROUPS:
            st.subheader(heading)
            if heading == "Rate limits":
                _limits_together()
            cols = st.columns(min(len(names), 3))
            for i, name in enumerate(names):
                with cols[i % len(cols)]:
                    values[name] = _widget(name, getattr(s, name), hints, editable)
        save, reset_all = st.columns([1, 1])
        with save:
            submitted = st.form_submit_button("Save and apply", type="primary", icon=":material/save:",
                                              disabled=not editable)
        with reset_all:
            resettable = tuple(n for _, names in GROUPS for n in names if n not in OPERATOR_FIELDS)
            st.form_submit_button("Reset all to defaults", key=section_key(_K, "reset_all"),
                                  icon=":material/restart_alt:", on_click=_fill_defaults, args=(resettable,),
                                  disabled=not editable)
    filled = st.session_state.pop(section_key(_K, "filled"), 0)
    if filled:
        st.info(f"Default filled in for {filled} field{'s' if filled != 1 else ''}; "
                f"Save and apply to use {'them' if filled != 1 else 'it'}.", icon=":material/restart_alt:")
    if not submitted:
        return
    changes = {k: v for k, v in values.items() if not _unchanged(k, v, getattr(s, k))}
    if not changes:
        st.info("Nothing changed.")
        return
    errors = field_errors(changes)
    for name, message in errors.items():
        (hints[name] if name in hints else st).error(literal(message), icon=":material/error:")
    if errors:
        return
    try:
        settings_store.save(get_engine(), changes)
    except SettingsError as exc:
        st.error(literal(exc), icon=":material/error:")
        return
    success(f"Saved and applied: {', '.join(Settings.label(n) for n in sorted(changes))}.")


def field_errors(changes: dict[str, Any]) -> dict[str, str]:
    """What is wrong with `changes`, by the changed field each refusal is shown beside, in the fields' own words."""
    errors: dict[str, str] = {}
    for refusal in Settings.refusals({**dict(get_settings()), **changes}):
        beside = next((n for n in refusal.fields if n in changes), next(iter(changes)))
        errors[beside] = f"{errors[beside]} {refusal.text}" if beside in errors else refusal.text
    return errors


def _sandbox_admin(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read (or change) the sandbox's fault settings, in-process or over its admin endpoint."""
    from core.llm.client import get_client  # the SDK loads only when a model is called

    return fault_config(get_client(), config)


def apply_chaos(mode: str, fault_rate: float) -> dict[str, Any]:
    changes = dict(CHAOS_MODES[mode])
    if "fault_rate" not in changes:
        changes["fault_rate"] = fault_rate
    current = _sandbox_admin(changes)
    return current


def _current_mode(config: dict[str, Any]) -> str:
    status = config.get("force_status")
    if status == 529:
        return "Every call overloaded (529, retried)"
    if status == 401:
        return "Every call rejected (401, key invalid)"
    return "Flaky (some calls fail and are retried)" if config.get("fault_rate") else "Off"


def chaos() -> None:
    """The chaos switch: make the offline sandbox fail on purpose, for demonstrations."""
    if get_settings().provider == "claude":
        st.caption("Fault injection is only available with the offline sandbox or a sandbox endpoint.")
        return
    config = _sandbox_admin()
    modes = list(CHAOS_MODES)
    mode = st.radio("Sandbox faults", modes, index=modes.index(_current_mode(config)), key=section_key(_K, "chaos"),
                    horizontal=True)
    rate = st.slider("Fault rate (share of calls that fail, spread over 429/500/503/529)", 0.0, 1.0,
                     float(config.get("fault_rate") or 0.3), 0.05, key=section_key(_K, "chaos_rate"),
                     disabled=mode != "Flaky (some calls fail and are retried)")
    editable = settings_store.may_change()  # the faults are the whole process's, like a setting
    if st.button("Apply to the sandbox", key=section_key(_K, "chaos_apply"), icon=":material/bolt:",
                 disabled=not editable, help=None if editable else settings_store.ADMINS_ONLY):
        config = apply_chaos(mode, rate)
        success(f"Sandbox faults: {mode}.")
    # str() first: an unset forced status reads "None", not nothing
    st.caption(f"Now: fault rate {literal(str(config.get('fault_rate')))}, forced status "
               f"{literal(str(config.get('force_status')))}, latency {literal(str(config.get('latency_ms')))} ms")


def _check(name: str, fn: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:  # noqa: BLE001 - a failing check is a result to show, classified and recorded

        err, error_id = report_error(exc, component="ui.settings.health")
        detail, ok = f"{err.user_message} (id {error_id})", False
    return {"check": name, "ok": ok, "detail": detail, "ms": round((time.perf_counter() - start) * 1000, 1)}


def _db() -> str:
    return ping(get_engine())


def _model_access() -> str:
    from core.llm.client import get_client  # the SDK loads only when a model is called
    from core.llm.loops import run_sync

    client = get_client()
    if client.sandbox is not None:
        return f"offline sandbox answering at {client.base_url}"

    async def _list_one() -> int:
        # the cheapest authenticated call: list one model, no tokens spent
        page = await client.async_sdk().models.list(limit=1)
        return len(page.data)

    return f"key accepted ({run_sync(_list_one())} model listed)"


def health() -> None:
    if st.button("Run health checks", key=section_key(_K, "health"), icon=":material/monitor_heart:"):
        st.session_state[section_key(_K, "health_result")] = [_check("Database", _db),
                                                              _check("Model access", _model_access)]
    for r in st.session_state.get(section_key(_K, "health_result"), []):
        icon = ":material/check_circle:" if r["ok"] else ":material/cancel:"
        (st.success if r["ok"] else st.error)(f"{literal(r['check'])}: {literal(r['detail'])} ({r['ms']} ms)",
                                              icon=icon)


