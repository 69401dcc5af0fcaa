"""Scrub secrets from text, nested data and stack traces before anything is stored or shown.

Two nets, both applied wherever data leaves the process (error rows, CSV, toasts, logs):

- keys: a mapping key that names a secret (password, token, api_key, cookie, ...; case and
  separators ignored, also inside longer names like ``db_password`` or ``x-api-key``) has its
  whole value replaced by ``[REDACTED]``;
- values: text shaped like a credential (API keys of the usual vendors, bearer/basic auth,
  JWTs, AWS keys, URL passwords, PEM private keys, ``password=...``) is replaced wherever it
  appears, keeping the surrounding words so the message still reads.

All patterns are compiled once into a single alternation, so a string is scanned in one pass.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from core.config import SettingsError, auth_secrets, get_settings

__all__ = [
    "REDACTED", "Scrubber", "app_secret_values", "cut", "install_log_redaction", "is_sensitive_key", "redact",
    "redact_cut", "redact_text",
    "redact_traceback", "secret_fragments", "secrets_under_keys",
]

REDACTED = "[REDACTED]"

# Beyond this nesting, data is summarised rather than walked (guards cycles and pathological input).
_MAX_DEPTH = 32

# ---- keys ------------------------------------------------------------------------------------
# Matched against the key lower-cased with separators (-, _, ., space) removed, so "X-Api-Key",
# "api_key" and "apiKey" are the same. Sentry's default denylist plus the usual HTTP/DB names.
_SENSITIVE_KEY = re.compile(
    r"password|passwd|passphrase|secret|apikey|credential|mysqlpwd|privatekey|cookie|"
    r"authorization|csrf|xsrf|sessionid|session|accesstoken|refreshtoken|connectionstring|connstr|"
    r"dsn|bearer|"
    # "tokens"/"token_count" are usage figures of an LLM call, not secrets
    r"token(?!s|count|usage|limit|budget|estimate|est)|"
    # "author" and "authority" are not credentials
    r"auth(?!or)"
)
_EXACT_SENSITIVE_KEYS = frozenset({"pwd", "pass", "pw", "databaseurl", "dburl"})
_KEY_SEPARATORS = str.maketrans("", "", "-_. ")


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when a mapping key names a secret (case and separators ignored)."""
    norm = key.lower().translate(_KEY_SEPARATORS)
    return norm in _EXACT_SENSITIVE_KEYS or _SENSITIVE_KEY.search(norm) is not None


# ---- values ------------------------------------------------------------------------------------
# Each rule is (kind, gate substrings, pattern). A rule's regex runs only when one of its gate
# substrings occurs in the text (plain `in` checks are far cheaper than a regex scan), and
# patterns start with a literal where possible so `re` can skip ahead quickly. Most messages
# therefore cost a handful of substring checks and no regex scan at all.

# Labels in free text whose value is a secret: "password=...", '"api_key": "..."', "db_password: ...",
# also inside escaped JSON ('{\"password\": \"...\"}') and URL-encoded forms ("password%3D...").
# Every label starts with one of these gates (the shortest start its spellings share): the label
# rule runs only where one occurs, and a text without any costs a dozen substring checks.
_LABEL_WORDS = (
    "pass", "pwd", "secret", "api", "access", "private", "credential", "token", "session", "cookie", "dsn",
    "accountkey",
)
_LABEL_NAMES = (
    r"password|passwd|pwd|secret(?:[_\-\s]?(?:access[_\-\s]?)?key)?|api[_\-]?key|access[_\-]?key|"
    r"private[_\-]?key|credentials?|token|session[_\-]?id|csrftoken|cookie|dsn|accountkey|sharedaccesskey"
)
# the label may be quoted, escaped-quoted or percent-quoted; ":" or "=" may be percent-encoded
_LABEL_SEP = r"(?:\\{0,3}[\"']|%22|%27)?\s*(?:[:=]|%3a|%3d)\s*"
_QUOTED_VALUE = r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
_ESCAPED_QUOTED_VALUE = r"\\{1,3}\"(?:(?!\\{1,3}\")[^\n]){0,2048}\\{1,3}\""
_PERCENT_QUOTED_VALUE = r"%22(?:(?!%22)\S){0,2048}%22"
# a bare value ends at a separator, at an escaped quote or at a percent-encoded "&", '"', "," or ";"
_BARE_VALUE = r"(?:[^\s,;&'\"<>(){}\[\]%\\]++|%(?!26|22|2c|3b)|\\(?![\"nrt]))++"
_VALUES = "|".join((_QUOTED_VALUE, _ESCAPED_QUOTED_VALUE, _PERCENT_QUOTED_VALUE, _BARE_VALUE))

_AWS_ID_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")
_AWS_ID = "(?:" + "|".join(_AWS_ID_PREFIXES) + ")[A-Z0-9]{16}"

_RULES: list[tuple[str, tuple[str, ...], str, int]] = [
    # PEM blocks first: their body would otherwise be cut into pieces by other patterns. A block
    # whose END line is missing (the text was cut) loses its header lines and base64 body.
    ("pem", ("-----BEGIN",),
     # the body may not run past the next BEGIN, so many unterminated BEGINs stay linear
     r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:(?:(?!-----BEGIN )[\s\S])*?"
     r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|"
     r"(?:(?:\s|\\[nr])*(?:[A-Za-z0-9+/=]{8,}|[A-Za-z][A-Za-z\-]*: [^\n\\]*))*[A-Za-z0-9+/=]*)",
     0),
    # incoming-webhook URLs carry their secret in the path: keep the host, drop the rest
    ("webhook", ("hooks.slack.com/", "discord.com/api/", "discordapp.com/api/"),
     r"(?P<head>hooks\.slack\.com/(?:services|workflows|triggers)/|"
     r"discord(?:app)?\.com/api/(?:v\d+/)?webhooks/)(?P<val>[A-Za-z0-9_.\-/]+)",
     0),
    # user:password@ in any URL: keep scheme, user and host. The password may hold "/", spaces,
    # quotes and "@" (SQLAlchemy accepts them unescaped); it ends at the first "@" that is
    # followed by a host. Bounded lengths keep a pathological "://a:aaaa..." line linear.
    ("url", ("://",),
     r"(?P<head>://[^:/?#\s@]{0,256}:)(?P<val>[^\n]{1,256}?)(?=@[^\s/@?#\"'\\]+(?:[/?#\s\"'\\,;)\]]|$))",
     0),
    # HTTP auth headers: the whole value after the label (it may be "Bearer xyz" or "Basic xyz")
    ("header", ("authorization",), r"(?P<head>authorization[\"']?\s*[:=]\s*[\"']?)(?P<val>[^\"'\r\n,}]+)",
     re.IGNORECASE),
    ("bearer", ("bearer",), r"(?P<head>bearer\s+)(?P<val>[A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE),
    ("basic", ("basic",), r"(?P<head>basic\s+)(?P<val>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE),
    # AWS secret keys are 40 base64 characters after a label that may be written with spaces ...
    ("aws_secret", ("aws",),
     r"(?P<head>aws[_\- ]?secret[_\- ]?(?:access[_\- ]?)?key[\"']?\s*[:=]?\s*[\"']?)(?P<val>[A-Za-z0-9/+]{40})"
     r"(?![A-Za-z0-9/+])", re.IGNORECASE),
    # label = value (covers aws_secret_access_key=..., "password": "...", db_password: ...)
    ("label", _LABEL_WORDS, r"(?P<head>(?:" + _LABEL_NAMES + ")" + _LABEL_SEP + ")(?P<val>" + _VALUES + ")",
     re.IGNORECASE),
    # a session cookie ("session=...", "sessionid=..."); "session:" in prose is not a label
    ("session", ("session=",), r"(?P<head>session=)(?P<val>[^\s;,&'\"<>]+)", re.IGNORECASE),
    # signed URLs and query strings: ?key=..., sig=... (Azure SAS), signature=... (S3, GCS)
    ("query", ("?key=", "&key=", "sig=", "signature="),
     r"(?P<head>[?&]key=|(?<![a-z0-9_])sig=|(?<![a-z0-9_])signature=)(?P<val>[^&#\s\"'<>]+)", re.IGNORECASE),
    ("anthropic", ("sk-ant-",), r"sk-ant-[A-Za-z0-9_\-]{8,}", 0),
    ("openai", ("sk-",), r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}", 0),
    ("stripe", ("_live_", "_test_"), r"(?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{10,}", 0),
    # starts only at a word start, and possessive runs never backtrack: "eyJeyJeyJ..." stays linear
    ("jwt", ("eyJ",), r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}+\.eyJ[A-Za-z0-9_\-]{5,}+\.[A-Za-z0-9_\-]*+", 0),
    ("supabase", ("sb_secret_", "sb_publishable_"), r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{10,}", 0),
    # an access key id, and the secret key right after it ("AKIA... wJalr...", "AKIA...:wJalr...")
    ("aws_id", _AWS_ID_PREFIXES,
     _AWS_ID + r"(?:(?P<sep>[\s,:;/|\"'=]{1,6})(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+]))?(?![A-Za-z0-9])", 0),
    ("github", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})", 0),
    ("huggingface", ("hf_",), r"hf_[A-Za-z0-9]{30,}", 0),
    ("slack", ("xox",), r"xox[abposr]-[A-Za-z0-9\-]{10,}", 0),
    ("google", ("AIza",), r"AIza[0-9A-Za-z_\-]{35}", 0),
]

# kinds matched without regard to case. Their patterns are written in lower case and run on the
# lower-cased text (IGNORECASE makes Python's re many times slower); spans map back onto the
# original because lower() keeps the length for nearly all text (else IGNORECASE is the fallback).
_CASELESS = frozenset(kind for kind, _gates, _body, flags in _RULES if flags & re.IGNORECASE)
# kinds that must not start inside a longer word ("task-ant-..." is not an "sk-ant-" key); a label
# may end a longer key name ("db_password=") so it is not in this set
_WORD_START = frozenset({"bearer", "basic", "aws_secret", "anthropic", "openai", "stripe", "jwt",
                         "supabase", "aws_id", "github", "huggingface", "slack", "google", "session"})
# kinds whose matches may only start where a gate occurs: found with str.find, not a regex scan
_AT_GATES = frozenset({"label", "session", "query"})

_COMPILED = [
    (kind, gates, re.compile(body, flags & ~re.IGNORECASE), re.compile(body, flags))
    for kind, gates, body, flags in _RULES
]


def _starts_word(s: str, i: int) -> bool:
    if i == 0:
        return True
    prev = s[i - 1]
    return not (prev.isalnum() or prev in "_-")


def _looks_like_token(value: str) -> bool:
    """A word after "Bearer" is a token, not prose, when it is long or not purely letters."""
    return len(value) >= 20 or not value.isalpha()


def _looks_like_basic_credentials(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return len(value) >= 16 and not value.isalpha()
    # "user:password" decodes to printable text with a colon; ordinary words decode to noise
    return (":" in text and text.isprintable()) or (len(value) >= 16 and not value.isalpha())


# "host:8080/path@x" is a port, not a password
_PORT = re.compile(r"\d{1,5}(?:[/\s]|$)")
# where a URL password may end: its "@" lies within this many characters of the "://"
_URL_WINDOW = 520


def _replacement(kind: str, s: str, m: re.Match[str]) -> str | None:
    """What replaces match `m` (whose spans index into `s`), or None to keep the text."""
    if kind in _WORD_START and not _starts_word(s, m.start()):
        return None
    if kind == "aws_id" and m.group("secret") is not None:
        return REDACTED + m.group("sep") + REDACTED
    if m.re.groupindex.get("val") is None:
        return REDACTED
    head = s[m.start("head"):m.end("head")]
    value = s[m.start("val"):m.end("val")]
    if kind == "bearer" and not _looks_like_token(value):
        return None
    if kind == "basic" and not _looks_like_basic_credentials(value):
        return None
    if kind == "url" and _PORT.match(value):
        return None
    if kind == "label":
        # keep the value's quotes (plain, escaped or percent-encoded) so JSON stays well formed
        if value[:1] in ("'", '"'):
            return head + value[0] + REDACTED + value[0]
        if value[:1] == "\\":
            quote = value[: value.index('"') + 1]
            return head + quote + REDACTED + quote
        if value[:3] == "%22":
            return head + "%22" + REDACTED + "%22"
    return head + REDACTED


def _matches_at_gates(rx: re.Pattern[str], scan: str, gates: tuple[str, ...],
                      needs: str | None = None) -> Iterator[re.Match[str]]:
    """Matches of `rx` that start exactly where a gate word occurs, left to right, not overlapping.

    Scanning a long traceback with a many-branched pattern is slow, while finding its few gate
    words with str.find is nearly free. With `needs`, a gate is tried only when that text occurs
    within _URL_WINDOW characters after it (a URL password needs its "@").
    """
    starts: list[int] = []
    for gate in gates:
        i = scan.find(gate)
        while i != -1:
            starts.append(i)
            i = scan.find(gate, i + 1)
    end = -1
    for i in sorted(set(starts)):
        if i < end:
            continue
        if needs is not None and scan.find(needs, i, i + _URL_WINDOW) == -1:
            continue
        m = rx.match(scan, i)
        if m is not None:
            end = m.end()
            yield m


def _apply(kind: str, matches: Iterable[re.Match[str]], s: str) -> str:
    """Replace each match (spans index into `s`) by its replacement."""
    pieces: list[str] = []
    pos = 0
    for m in matches:
        replacement = _replacement(kind, s, m)
        if replacement is not None:
            pieces.append(s[pos:m.start()])
            pieces.append(replacement)
            pos = m.end()
    if not pieces:
        return s
    pieces.append(s[pos:])
    return "".join(pieces)


# ---- known secrets -----------------------------------------------------------------------------
# A secret the app knows (its own keys, or a value found under a secret-named key) is removed
# wherever its text appears, whatever its shape. Shorter values would take ordinary words with them.
_KNOWN_MIN_CHARS = 6


def _known_forms(value: str) -> set[str]:
    """`value` as it may appear in other text: plain, URL-encoded, JSON- or repr-escaped."""
    forms = {value, quote(value, safe=""), quote(value), json.dumps(value)[1:-1], repr(value)[1:-1]}
    return {f for f in forms if len(f) >= _KNOWN_MIN_CHARS and REDACTED not in f}


def secret_fragments(value: Any) -> set[str]:
    """The texts to remove wherever else they appear, for a value kept under a secret-named key.

    The whole value, its words that look like tokens ("Bearer abc..." -> "abc..."), and the
    password of a URL ("postgresql://u:pw@h" -> "pw"), each in the forms _known_forms lists.
    """
    out: set[str] = set()
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        for item in value.values():
            out |= secret_fragments(item)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            out |= secret_fragments(item)
        return out
    if not isinstance(value, str):
        return out
    return set(_text_fragments(value))


@lru_cache(maxsize=1024)
def _text_fragments(value: str) -> frozenset[str]:
    # the same secret is found in row after row (one key, one failing call): computed once
    text = value.strip()
    parts = {text}
    if "://" in text:
        try:
            password = urlsplit(text).password
        except ValueError:
            password = None
        if password:
            parts.add(password)
            parts.add(unquote(password))
    words = text.split()
    if len(words) > 1:
        parts.update(w for w in words if _looks_like_token(w) and len(w) >= _KNOWN_MIN_CHARS)
    out: set[str] = set()
    for part in parts:
        out |= _known_forms(part)
    return frozenset(out)


def secrets_under_keys(obj: Any, _depth: int = 0) -> set[str]:
    """Every fragment (see secret_fragments) of the values kept under secret-named keys in `obj`."""
    out: set[str] = set()
    if _depth >= _MAX_DEPTH:
        return out
    if type(obj) is dict:  # the common case (a flat context of scalars) first, without recursion
        for key, value in obj.items():
            if type(key) is str and is_sensitive_key(key):
                if type(value) is str:
                    out.update(_text_fragments(value))
                else:
                    out |= secret_fragments(value)
            elif isinstance(value, _CONTAINERS):
                out |= secrets_under_keys(value, _depth + 1)
    elif isinstance(obj, dict):  # a dict subclass: walked as a plain dict
        return secrets_under_keys(dict(obj), _depth)
    elif isinstance(obj, list | tuple):
        for value in obj:
            if isinstance(value, _CONTAINERS):
                out |= secrets_under_keys(value, _depth + 1)
    return out


_CONTAINERS = (dict, list, tuple)


def _literal_pass(s: str, known: tuple[str, ...]) -> str:
    for secret in known:  # longest first, so a longer form is not broken up by a shorter one
        if secret in s:
            s = s.replace(secret, REDACTED)
    return s


class _AppSecrets:
    """The app's own secrets, taken from the settings in force (refreshed when they change)."""

    def __init__(self) -> None:
        self.settings: object | None = None
        self.known: tuple[str, ...] = ()
        self.lock = threading.Lock()

    def current(self) -> tuple[str, ...]:
        try:
            settings = get_settings()
        except SettingsError:
            return self.known  # the process is refusing to start; keep what was known
        if settings is not self.settings:
            with self.lock:
                if settings is not self.settings:
                    self.known = _sorted_known(app_secret_values(settings))
                    self.settings = settings
        return self.known


def app_secret_values(settings: Any) -> set[str]:
    """Fragments of the app's secrets: the API key, the database password, the webhook URL's path
    and query, and every secret of secrets.toml's [auth] (client and cookie secrets)."""
    out: set[str] = set()
    if settings.anthropic_api_key:
        out |= secret_fragments(settings.anthropic_api_key)
    if settings.database_url:
        try:
            password = urlsplit(settings.database_url).password
        except ValueError:
            password = None
        if password:
            out |= _known_forms(password) | _known_forms(unquote(password))
    if settings.alert_webhook_url:
        try:
            hook = urlsplit(settings.alert_webhook_url)
        except ValueError:
            hook = None
        if hook is not None:
            for part in (hook.path, hook.path.strip("/"), hook.query):
                out |= _known_forms(part) if part.strip("/") else set()
    # client_secret and cookie_secret, also under provider tables ([auth.google])
    return out | secrets_under_keys(auth_secrets())


def _sorted_known(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values), key=len, reverse=True))


@lru_cache(maxsize=256)
def _combined_known(row: frozenset[str], app: tuple[str, ...]) -> tuple[str, ...]:
    # rows of one failure carry the same secret: the sorted tuple is made once, not per row
    return _sorted_known((*row, *app))


_app_secrets = _AppSecrets()

# Short strings repeat (context keys, codes, user messages, the same failure over and over), so
# their results are cached; long ones (tracebacks, bodies) are scanned each time.
_CACHE_MAX_CHARS = 512


def redact_text(s: str) -> str:
    """`s` with every secret-shaped value and every secret the app knows replaced by [REDACTED]."""
    if not isinstance(s, str):
        s = str(s)
    known = _app_secrets.current()
    if len(s) <= _CACHE_MAX_CHARS:
        return _redact_short(s, known)
    return _redact_scan(_literal_pass(s, known) if known else s)


@lru_cache(maxsize=8192)
def _redact_short(s: str, known: tuple[str, ...]) -> str:
    # `known` is part of the key: a secret set later cannot be served from an entry made before
    return _redact_scan(_literal_pass(s, known) if known else s)


def _redact_scan(s: str) -> str:
    if not s:
        return s
    low: str | None = None
    for kind, gates, rx_plain, rx_caseless in _COMPILED:
        if kind in _CASELESS:
            if low is None:
                low = s.lower()
            for gate in gates:
                if gate in low:
                    break
            else:
                continue
            if len(low) != len(s):
                new = _apply(kind, rx_caseless.finditer(s), s)
            elif kind in _AT_GATES:
                new = _apply(kind, _matches_at_gates(rx_plain, low, gates), s)
            else:
                new = _apply(kind, rx_plain.finditer(low), s)
        else:
            for gate in gates:
                if gate in s:
                    break
            else:
                continue
            if kind == "url":
                if "@" not in s:
                    continue
                new = _apply(kind, _matches_at_gates(rx_plain, s, gates, needs="@"), s)
            else:
                new = _apply(kind, rx_plain.finditer(s), s)
        if new is not s:
            s = new
            low = None  # the text changed
    return s


def redact_traceback(s: str) -> str:
    """A formatted traceback with secrets removed from messages, source lines and locals."""
    # source lines ("client = Anthropic(api_key='sk-...')") and exception messages are text
    # like any other; the same single pass covers them
    return redact_text(s)


def cut(text: str, limit: int, *, keep: str = "start") -> str:
    """`text` cut to about `limit` characters with a note of what was left out.

    Call it on redacted text only (redact_cut does both): a cut can land inside a secret and
    leave a tail no pattern recognises. `keep="end"` keeps the end (the frames of a traceback
    nearest the failure) instead of the start.
    """
    if len(text) <= limit:
        return text
    if keep == "end":
        return f"[{len(text) - limit} earlier characters cut] ..." + text[-limit:]
    return text[:limit] + f"... [{len(text) - limit} more characters]"


def redact_cut(text: Any, limit: int, *, keep: str = "start", known: Iterable[str] = ()) -> str:
    """Redact `text` (also removing the `known` secrets), then cut it: the one order that is safe."""
    return cut(Scrubber(known)(text), limit, keep=keep)


class Scrubber:
    """redact_text that also removes `known` secrets (found elsewhere in the same row) wherever they appear."""

    __slots__ = ("known",)

    def __init__(self, known: Iterable[str] = ()) -> None:
        # the row's secrets and the app's, in one tuple: one cached call per short string
        self.known = _combined_known(known if isinstance(known, frozenset) else frozenset(known),
                                     _app_secrets.current())

    @classmethod
    def with_known(cls, known: tuple[str, ...]) -> Scrubber:
        """A scrubber for an already combined, sorted tuple of known secrets (Scrubber.known)."""
        scrubber = cls.__new__(cls)
        scrubber.known = known
        return scrubber

    def __call__(self, s: Any) -> str:
        if not isinstance(s, str):
            s = str(s)
        if len(s) <= _CACHE_MAX_CHARS:
            return _redact_short(s, self.known)
        return _redact_scan(_literal_pass(s, self.known) if self.known else s)


def redact(obj: Any) -> Any:
    """A deep copy of `obj` with secret-named keys and secret-shaped strings redacted.

    Dicts, lists, tuples and sets are rebuilt; strings are scrubbed; bytes are decoded and
    scrubbed; other values are returned as they are (stringify them first to scrub their text).
    """
    return _redact(obj, 0, set())


def _redact(obj: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, bytes | bytearray):
        return redact_text(bytes(obj).decode("utf-8", errors="replace"))
    if not isinstance(obj, dict | list | tuple | set | frozenset):
        return obj
    if depth >= _MAX_DEPTH or id(obj) in seen:
        return f"[{type(obj).__name__} not shown: nested too deep or cyclic]"
    seen.add(id(obj))
    try:
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                name = key if isinstance(key, str) else str(key)
                # a key may itself be a secret (a token used as a cache key)
                new_key = redact_text(key) if isinstance(key, str) else key
                out[new_key] = REDACTED if is_sensitive_key(name) else _redact(value, depth + 1, seen)
            return out
        items = [_redact(v, depth + 1, seen) for v in obj]
        if isinstance(obj, tuple):
            return tuple(items)
        if isinstance(obj, set | frozenset):
            try:
                return type(obj)(items)
            except TypeError:  # unhashable after scrubbing (bytes -> str is still hashable; be safe)
                return items
        return items
    finally:
        seen.discard(id(obj))


# ---- log records -------------------------------------------------------------------------------
_log_local = threading.local()
_log_installed = False


def _redact_record(record: logging.LogRecord) -> None:
    """Replace a record's message, exception text and stack by their redacted forms."""
    if getattr(_log_local, "busy", False):
        return  # a log line made while redacting one (there should be none) is left alone
    _log_local.busy = True
    try:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # "%d" given a str: logging would report it; keep the text
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            # formatters print exc_text when it is set; without exc_info none can format the raw one
            record.exc_text, record.exc_info = redact_traceback(text.rstrip("\n")), None
        elif record.exc_text:
            record.exc_text = redact_traceback(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_traceback(record.stack_info)
    except Exception as exc:  # noqa: BLE001 - a line that cannot be redacted is withheld, never shown raw
        record.msg, record.args = f"[log line withheld: it could not be redacted ({type(exc).__name__})]", None
        record.exc_info = record.exc_text = record.stack_info = None
    finally:
        _log_local.busy = False


def install_log_redaction() -> bool:
    """Make every log record of this process redacted as it is made; True the first time.

    A record factory, not a handler filter: it covers every logger and handler, ours and the
    libraries', whatever is configured later, and costs nothing for lines below the level.
    """
    global _log_installed
    with _app_secrets.lock:
        if _log_installed:
            return False
        _log_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    return True
