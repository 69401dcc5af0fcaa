"""Redaction: secret-named keys and secret-shaped values never survive; look-alikes do."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from redaction_cases import ANTHROPIC_KEY, LOOK_ALIKES, SECRETS

from core.redact import REDACTED, is_sensitive_key, redact, redact_text, redact_traceback

SECRET_SHAPES = SECRETS


@pytest.mark.parametrize(("name", "text", "secret", "kept"), SECRET_SHAPES, ids=[s[0] for s in SECRET_SHAPES])
def test_secret_shapes_are_redacted_and_context_is_kept(name: str, text: str, secret: str, kept: str) -> None:
    """Each kind of secret is replaced by [REDACTED] while the words around it remain."""
    out = redact_text(text)
    assert secret not in out, name
    assert REDACTED in out
    assert kept in out


def test_at_least_forty_five_distinct_secrets_and_twenty_look_alikes_are_covered() -> None:
    """The tables hold at least 45 distinct kinds of secret and 20 look-alikes."""
    assert len({name for name, *_ in SECRET_SHAPES}) >= 45
    assert len(set(LOOK_ALIKES)) >= 20


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_text_that_only_looks_like_a_secret_survives(text: str) -> None:
    """Ordinary text resembling a secret (uuids, hashes, emails, plain URLs, token counts) is unchanged."""
    assert redact_text(text) == text


def test_url_keeps_user_and_host() -> None:
    """A connection string keeps its scheme, user, host, port and database; only the password goes."""
    out = redact_text("postgresql+psycopg://analyst:pa55word@db.example.com:5432/studio")
    assert out == f"postgresql+psycopg://analyst:{REDACTED}@db.example.com:5432/studio"


def test_quoted_values_keep_their_quotes() -> None:
    """A quoted secret value is replaced inside its quotes, so JSON-looking text stays well formed."""
    assert redact_text('"api_key": "abc123"') == f'"api_key": "{REDACTED}"'


@pytest.mark.parametrize(
    "key",
    ["password", "PASSWORD", "passwd", "secret", "client_secret", "api_key", "apiKey", "X-Api-Key", "auth",
     "credentials", "mysql_pwd", "privatekey", "private_key", "token", "access_token", "refresh_token",
     "session", "sessionid", "sessionToken", "cookie", "Set-Cookie", "authorization", "csrftoken", "dsn",
     "connection string", "db_password", "DATABASE_URL"],
)
def test_sensitive_keys_are_recognised(key: str) -> None:
    """Keys on the denylist match whatever their case and separators, also inside longer names."""
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["input_tokens", "output_tokens", "max_tokens", "token_count", "author",
                                 "model", "status_code", "batch_id", "turns", "message"])
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    """Usage figures and ordinary field names are not mistaken for secrets."""
    assert not is_sensitive_key(key)


def test_nested_structures_are_redacted_at_any_depth() -> None:
    """Secret keys and secret values are redacted inside dicts, lists and tuples at any depth."""
    data = {
        "request": {
            "headers": {"Authorization": "Bearer xyz", "X-Api-Key": ANTHROPIC_KEY, "Accept": "json"},
            "attempts": [{"db_password": 1234}, ("note", f"key={ANTHROPIC_KEY}")],
        },
        "usage": {"input_tokens": 10, "output_tokens": 20},
        "model": "claude-sonnet-5-5",
    }
    out = redact(data)
    assert out["request"]["headers"] == {"Authorization": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"}
    assert out["request"]["attempts"][0] == {"db_password": REDACTED}
    assert out["request"]["attempts"][1] == ("note", f"key={REDACTED}")
    assert out["usage"] == {"input_tokens": 10, "output_tokens": 20}
    assert out["model"] == "claude-sonnet-5-5"


def test_redact_returns_a_copy_and_leaves_the_input_alone() -> None:
    """redact() builds new containers; the caller's data still holds its original values."""
    data = {"password": "hunter2", "items": ["sk-ant-api03-" + "q" * 30]}
    out = redact(data)
    assert data["password"] == "hunter2" and data["items"][0].startswith("sk-ant-")
    assert out is not data and out["items"] is not data["items"]


def test_cyclic_data_does_not_recurse_forever() -> None:
    """A list that contains itself is summarised instead of overflowing the stack."""
    loop: list[object] = ["password=hunter2"]
    loop.append(loop)
    out = redact(loop)
    assert out[0] == f"password={REDACTED}"
    assert "cyclic" in out[1]


def test_traceback_source_lines_and_messages_are_scrubbed() -> None:
    """A real traceback loses secrets from its source lines and exception message."""
    import traceback

    def connect() -> None:
        raise ConnectionError("refused for postgresql://svc:Sup3rS3cret@db.internal:5432/app sk-ant-api03-FAKEfake0123456789")

    try:
        connect()
    except ConnectionError as exc:
        text = "".join(traceback.format_exception(exc))
    assert text.count("Sup3rS3cret") == 2  # once in the source line, once in the message
    out = redact_traceback(text)
    assert "Sup3rS3cret" not in out
    assert "FAKEfake0123456789" not in out
    assert "svc:" in out and "db.internal:5432" in out
    assert "ConnectionError" in out


def test_long_text_is_scrubbed_everywhere() -> None:
    """Secrets deep inside a long text (beyond the short-string cache) are still found."""
    filler = "ordinary log line with nothing to hide\n" * 200
    text = filler + f"Authorization: Bearer {ANTHROPIC_KEY}\n" + filler + "password=hunter2\n"
    out = redact_text(text)
    assert ANTHROPIC_KEY not in out and "hunter2" not in out
    assert out.count(REDACTED) == 2


def test_non_string_input_is_stringified() -> None:
    """redact_text accepts any value and scrubs its text form."""
    assert redact_text(12345) == "12345"
    assert redact_text(b"password=x".decode()) == f"password={REDACTED}"


def test_secret_used_as_a_dict_key_is_redacted() -> None:
    """A secret that appears as a mapping key (not only as a value) is scrubbed too."""
    out = redact({ANTHROPIC_KEY: "cached", "plain": "ok"})
    assert ANTHROPIC_KEY not in str(out)
    assert out["plain"] == "ok" and "cached" in out.values()


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN RSA PRIVATE KEY-----" * 5000,
        "eyJ" * 50_000,
        "https://u:" * 50_000,
        "password=" * 50_000,
        "Authorization: " * 30_000,
    ],
    ids=["unterminated-pem", "eyJ-run", "url-heads", "labels", "headers"],
)
def test_adversarial_input_is_processed_in_one_pass(text: str) -> None:
    """Repetitive input built to trigger regex backtracking is still redacted (the suite's timeout bounds it)."""
    out = redact_text(text)
    assert isinstance(out, str) and len(out) <= len(text) + 20 * len(REDACTED)


# ---- what the redactor knows: values under secret-named keys, the app's own secrets ----------------


def _row(message: str, context: dict | None = None, user_message: str | None = None,
         original: BaseException | None = None, **ids: str | None) -> dict:
    from datetime import UTC, datetime

    from core.errorlog.rows import Pending, build_row
    from core.errors import APIError

    err = APIError(message, code="bad_request", user_message=user_message)
    pending = Pending(1, "0" * 32, datetime.now(UTC), err, original if original is not None else err, "test",
                      context, ids.get("request_id"), ids.get("operation_id"), None, ids.get("user_id", "ana"),
                      ids.get("session_id"), "error", False, "test")
    return build_row(pending, text_limit=20_000, context_limit=8000)


def test_a_value_under_a_secret_key_is_removed_wherever_else_it_appears_in_the_row() -> None:
    """A secret passed as api_key and echoed in the message, user message, other context and trace is gone from all."""
    plain = "Plain-Looking-Value-77"  # no known shape: only the key says it is a secret
    try:
        raise ConnectionError(f"refused with {plain}")
    except ConnectionError as exc:
        raised = exc
    row = _row(f"call failed using {plain}", user_message=f"your key {plain} was refused", original=raised,
               context={"api_key": plain, "note": f"echo {plain}", "request": {"headers": {"X-Api-Key": plain},
                                                                              "body": {"text": plain}}})
    stored = json.dumps(row, default=str)
    assert plain not in stored
    assert row["message"] == f"call failed using {REDACTED}"
    assert row["context"]["note"] == f"echo {REDACTED}"
    assert REDACTED in row["user_message"] and REDACTED in row["stack_trace"]


def test_token_words_and_url_passwords_under_secret_keys_are_removed_elsewhere() -> None:
    """The token of an "Authorization: Bearer ..." header and a URL's password are removed where they appear alone."""
    row = _row("token abcdefghijkl0123 and pw Plain-Pg-Pass-42 seen",
               context={"headers": {"Authorization": "Bearer abcdefghijkl0123"},
                        "database_url": "postgresql://svc:Plain-Pg-Pass-42@db/app"})
    assert "abcdefghijkl0123" not in row["message"] and "Plain-Pg-Pass-42" not in row["message"]


def test_short_values_under_secret_keys_do_not_take_ordinary_words_with_them() -> None:
    """A value shorter than six characters under a secret key is redacted there but not hunted elsewhere."""
    row = _row("the pool is full", context={"password": "pool"})
    assert row["message"] == "the pool is full" and row["context"]["password"] == REDACTED


def test_the_apps_own_secrets_are_removed_from_any_text(tmp_path, monkeypatch) -> None:
    """The API key, the database password, the webhook's path and query and the [auth] secrets go wherever they appear."""
    from core.config import reload_settings

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n'
                       'cookie_secret = "cookie-Secret-Value-1"\n'
                       '[auth.google]\nclient_id = "app.example"\nclient_secret = "client-Secret-Value-2"\n')
    monkeypatch.setenv("STUDIO_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "unshaped-anthropic-value-3")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://svc:Db-Pass-Value-4@db.internal/app")
    monkeypatch.setenv("STUDIO_ALERT_WEBHOOK_URL", "https://alerts.example.com/hook/Path-Secret-5?auth=Query-6")
    reload_settings()
    text = ("seen: unshaped-anthropic-value-3, Db-Pass-Value-4, Db-Pass-Value-4 in %-form: Db-Pass-Value-4, "
            "/hook/Path-Secret-5, auth=Query-6, cookie-Secret-Value-1, client-Secret-Value-2; app.example stays")
    out = redact_text(text)
    for secret in ("unshaped-anthropic-value-3", "Db-Pass-Value-4", "Path-Secret-5", "Query-6",
                   "cookie-Secret-Value-1", "client-Secret-Value-2"):
        assert secret not in out
    assert "app.example stays" in out and "alerts.example.com" not in text


def test_a_secret_set_after_a_text_was_cached_is_still_removed(monkeypatch) -> None:
    """Changing the settings (a new API key) is not defeated by the cache of short texts."""
    from core.config import reload_settings

    text = "echo later-set-key-value-8"
    assert redact_text(text) == text
    monkeypatch.setenv("ANTHROPIC_API_KEY", "later-set-key-value-8")
    reload_settings()
    assert redact_text(text) == f"echo {REDACTED}"


# ---- redact first, cut after -----------------------------------------------------------------------


def test_a_long_stack_trace_is_redacted_before_it_is_cut() -> None:
    """A cut that lands inside a key cannot leave the key's tail in the stored trace."""
    from core.errorlog.rows import Pending, build_row
    from core.errors import APIError

    try:
        raise ValueError("x" * 5000 + f" {ANTHROPIC_KEY} " + "y" * 3000)
    except ValueError as exc:
        raised = exc
    err = APIError("boom", code="server_error")
    # the limit keeps the end of the trace: put the cut 20 characters into the key
    trace_len = len("".join(__import__("traceback").format_exception(raised)))
    key_at = trace_len - (3000 + 2 + len(ANTHROPIC_KEY)) - len("\n")
    limit = trace_len - key_at - 20
    pending = Pending(1, "0" * 32, datetime.now(UTC), err, raised, "test", None, None, None, None, "ana", None,
                      "error", False, "test")
    trace = build_row(pending, text_limit=limit, context_limit=8000)["stack_trace"]
    assert ANTHROPIC_KEY[20:40] not in trace and ANTHROPIC_KEY[-20:] not in trace
    assert trace.startswith("[") and "earlier characters cut" in trace


def test_redact_cut_never_leaves_part_of_a_secret() -> None:
    """redact_cut redacts the whole text and only then cuts it."""
    from core.redact import redact_cut

    text = f"key {ANTHROPIC_KEY} end"
    for limit in range(5, len(text)):
        out = redact_cut(text, limit)
        assert ANTHROPIC_KEY[15:] not in out and ANTHROPIC_KEY[-12:] not in out


# ---- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["request_id", "operation_id", "user_id", "session_id"])
@pytest.mark.parametrize("value", ["Bearer abcdefghij0123456789", "password=hunter2xy", "a b c = d",
                                   "https://u:pw@host/x", ANTHROPIC_KEY])
def test_ids_that_are_not_id_shaped_are_redacted(field: str, value: str) -> None:
    """request, operation, user and session ids holding anything but an id are stored as [REDACTED]."""
    row = _row("boom", **{field: value})
    assert row[field] == REDACTED


@pytest.mark.parametrize(("field", "value"), [
    ("request_id", "req_011CSHoEeqs5C35K2UUqR7Fy"), ("operation_id", "0192d3e4-5f6a-7b8c-9d0e-1f2a3b4c5d6e"),
    ("user_id", "ada.lovelace@example.com"), ("user_id", "Ada Lovelace"), ("session_id", "3f9a1c2b4d5e6f70"),
    ("operation_id", "batch-1:item-17"),
])
def test_id_shaped_ids_are_kept(field: str, value: str) -> None:
    """Ordinary ids (uuids, request ids, emails, a user name) are stored as given."""
    assert _row("boom", **{field: value})[field] == value


# ---- log lines ----------------------------------------------------------------------------------


def test_every_log_line_passes_the_redactor_message_arguments_and_traceback() -> None:
    """A log line's message, its %-arguments, its exception and its stack pass the redactor."""
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("studio.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("connect to %s failed", "postgresql://svc:Sup3rS3cret@db/app")
        try:
            raise RuntimeError(f"upstream rejected {ANTHROPIC_KEY}")
        except RuntimeError:
            logger.exception("call failed with api_key=%s", ANTHROPIC_KEY)
        password = "hunter2xy"  # the stack shows this frame's source line, so the call names a variable
        logger.info("password=%s", password, stack_info=True)
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "Sup3rS3cret" not in out and ANTHROPIC_KEY not in out and "hunter2xy" not in out
    assert "svc:[REDACTED]@db" in out and "Traceback" in out and "RuntimeError: upstream rejected" in out
