"""Redaction: secret-named keys and secret-shaped values never survive; look-alikes do."""

from __future__ import annotations

import pytest

from core.redact import REDACTED, is_sensitive_key, redact, redact_text, redact_traceback

ANTHROPIC_KEY = "sk-ant-api03-" + "Xy7_kQ2-pL9" * 8 + "AA"
ANTHROPIC_ADMIN_KEY = "sk-ant-admin01-" + "Zq4mN8rT2v" * 8
OPENAI_PROJECT_KEY = "sk-proj-" + "Ab3dEf6hIj9k" * 5
OPENAI_LEGACY_KEY = "sk-" + "T3BlbkFJ" * 6
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJzZXJ2aWNlX3JvbGUiLCJpYXQiOjE3MDAwMDAwMDB9."
    "s1gN4tur3_abc-DEF123xyz"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7bq98t1cXw0cJ2vPzG5Q\n"
    "q2c+vyXqH0p1kJm4ZyLqVb8s0N3eQ1w==\n"
    "-----END RSA PRIVATE KEY-----"
)

# (name, text containing a secret, the secret itself, text that must remain)
SECRET_SHAPES = [
    ("anthropic api key", f"auth failed for key {ANTHROPIC_KEY} today", ANTHROPIC_KEY, "auth failed for key"),
    ("anthropic admin key", f"admin={ANTHROPIC_ADMIN_KEY}", ANTHROPIC_ADMIN_KEY, "admin="),
    ("openai project key", f"using {OPENAI_PROJECT_KEY}.", OPENAI_PROJECT_KEY, "using "),
    ("openai legacy key", f"key '{OPENAI_LEGACY_KEY}' rejected", OPENAI_LEGACY_KEY, "rejected"),
    ("bearer token", "GET /v1 with Bearer abcDEF123.456-ghi_jkl~", "abcDEF123.456-ghi_jkl~", "Bearer "),
    ("basic auth", "sent Basic dXNlcjpodW50ZXIy to proxy", "dXNlcjpodW50ZXIy", "sent Basic "),
    ("authorization header", "Authorization: Bearer tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a", "Authorization: "),
    ("jwt / supabase anon or service_role key", f"apikey header {JWT} sent", JWT, "header"),
    ("supabase secret key", "SUPABASE sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", "sb_secret_N7UND0UgjKTVK",
     "SUPABASE "),
    ("supabase publishable key", "client sb_publishable_ZaZ2Yy1Xx0Ww9Vv8", "sb_publishable_ZaZ2Yy1Xx0Ww9Vv8", "client"),
    ("aws access key id", "creds AKIAIOSFODNN7EXAMPLE loaded", "AKIAIOSFODNN7EXAMPLE", "loaded"),
    ("aws session key id", "ASIAY34FZKBOKMUTVV7A expired", "ASIAY34FZKBOKMUTVV7A", "expired"),
    ("aws secret key by label", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key="),
    ("aws secret key with spaced label", "AWS Secret Access Key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI", "AWS Secret Access Key:"),
    ("postgres url password", "connect postgresql://postgres.abcd:S3cr3t!pw@aws-0-eu.pooler.supabase.com:5432/postgres",
     "S3cr3t!pw", "postgresql://postgres.abcd:"),
    ("url password containing @", "redis://app:p@ss@cache.internal:6379/0", "p@ss", "@cache.internal:6379/0"),
    ("github classic token", "token ghp_" + "a1B2c3D4e5" * 4, "ghp_a1B2c3D4e5", "token"),
    ("github oauth token", "gho_" + "Z9y8X7w6V5" * 4 + " used", "gho_Z9y8X7w6V5", " used"),
    ("github fine-grained token", "github_pat_11ABCDEFG0abcdefghijkl_MNOPqrstuvWXYZ0123456789", "github_pat_11ABCDEFG0",
     ""),
    ("slack bot token", "slack xoxb-2048-1111-AbCdEfGhIjKl posted", "xoxb-2048-1111-AbCdEfGhIjKl", "posted"),
    ("google api key", "maps AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q ok", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
     " ok"),
    ("stripe live secret", "charge via sk_live_51HxYzAbCdEfGhIjKl", "sk_live_51HxYzAbCdEfGhIjKl", "charge via"),
    ("stripe restricted key", "rk_live_51HxYzAbCdEfGhIjKlMn", "rk_live_51HxYzAbCdEfGhIjKlMn", ""),
    ("pem private key", f"loaded {PEM} from disk", "MIIEowIBAAKCAQEA7bq98t1cXw0cJ2vPzG5Q", "from disk"),
    ("password assignment", "login password=hunter2 user=bob", "hunter2", "user=bob"),
    ("json password", '{"user": "bob", "password": "hunter2"}', "hunter2", '"user": "bob"'),
    ("compound label", "db_password: Tr0ub4dor&3", "Tr0ub4dor", "db_password:"),
    ("camel-case session token", "{'sessionToken': 'a9b8c7d6'}", "a9b8c7d6", "sessionToken"),
]


@pytest.mark.parametrize(("name", "text", "secret", "kept"), SECRET_SHAPES, ids=[s[0] for s in SECRET_SHAPES])
def test_secret_shapes_are_redacted_and_context_is_kept(name: str, text: str, secret: str, kept: str) -> None:
    """Each kind of secret is replaced by [REDACTED] while the words around it remain."""
    out = redact_text(text)
    assert secret not in out, name
    assert REDACTED in out
    assert kept in out


def test_at_least_fifteen_distinct_secret_shapes_are_covered() -> None:
    """The shape table covers at least fifteen distinct kinds of secret."""
    assert len({name for name, *_ in SECRET_SHAPES}) >= 15


LOOK_ALIKES = [
    "task-ant finished; the skeleton crew left",
    "Bearer of bad news",
    "basic configuration is fine",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "eyJ alone is just three letters",
    "mail bob@example.com about it",
    "see https://docs.example.com/path?q=1 and http://localhost:8080/health",
    "usage input_tokens=1200 output_tokens: 380 max_tokens=4096",
    "author: Ada Lovelace",
    "the password is wrong, please try again",
    "risk-ant-farm and desk-top",
    "postgresql://localhost:5432/studio",
]


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
