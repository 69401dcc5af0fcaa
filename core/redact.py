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
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

__all__ = ["REDACTED", "is_sensitive_key", "redact", "redact_text", "redact_traceback"]

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

# Labels in free text whose value is a secret: "password=...", '"api_key": "..."', "db_password: ...".
_LABEL_WORDS = (
    "password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "access_key", "access-key",
    "private_key", "private-key", "credential", "token", "sessionid", "session_id", "csrftoken", "cookie",
    "dsn",
)
_QUOTED_VALUE = r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
_BARE_VALUE = r"[^\s,;&'\"<>(){}\[\]]+"

_RULES: list[tuple[str, tuple[str, ...], str, int]] = [
    # PEM blocks first: their body would otherwise be cut into pieces by other patterns
    ("pem", ("-----BEGIN",),
     # the body may not run past the next BEGIN, so many unterminated BEGINs stay linear
     r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----BEGIN )[\s\S])*?"
     r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
     0),
    # user:password@ in any URL: keep scheme, user and host; the password runs to the last "@"
    # before the path, so an unescaped "@" inside it is covered
    # (bounded lengths keep a pathological "://a:aaaa..." line linear instead of quadratic)
    ("url", ("://",), r"(?P<head>://[^:/?#\s@]{0,256}:)(?P<val>[^\s/\"'@][^\s/\"']{0,255})(?=@)", 0),
    # HTTP auth headers: the whole value after the label (it may be "Bearer xyz" or "Basic xyz")
    ("header", ("authorization",), r"(?P<head>authorization[\"']?\s*[:=]\s*[\"']?)(?P<val>[^\"'\r\n,}]+)",
     re.IGNORECASE),
    ("bearer", ("bearer",), r"(?P<head>bearer\s+)(?P<val>[A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE),
    ("basic", ("basic",), r"(?P<head>basic\s+)(?P<val>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE),
    # AWS secret keys are 40 base64 characters after a label that may be written with spaces
    ("aws_secret", ("aws",),
     r"(?P<head>aws[_\- ]?secret[_\- ]?(?:access[_\- ]?)?key[\"']?\s*[:=]?\s*[\"']?)(?P<val>[A-Za-z0-9/+]{40})"
     r"(?![A-Za-z0-9/+])", re.IGNORECASE),
    # label = value (covers aws_secret_access_key=..., "password": "...", db_password: ...)
    ("label", _LABEL_WORDS,
     r"(?P<head>(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?|"
     r"token|sessionid|session[_\-]?id|csrftoken|cookie|dsn)[\"']?\s*[:=]\s*)(?P<val>" + _QUOTED_VALUE + "|"
     + _BARE_VALUE + ")", re.IGNORECASE),
    ("anthropic", ("sk-ant-",), r"sk-ant-[A-Za-z0-9_\-]{8,}", 0),
    ("openai", ("sk-",), r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}", 0),
    ("stripe", ("_live_", "_test_"), r"(?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{10,}", 0),
    # starts only at a word start, and possessive runs never backtrack: "eyJeyJeyJ..." stays linear
    ("jwt", ("eyJ",), r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}+\.eyJ[A-Za-z0-9_\-]{5,}+\.[A-Za-z0-9_\-]*+", 0),
    ("supabase", ("sb_secret_", "sb_publishable_"), r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{10,}", 0),
    ("aws_id", ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"),
     r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])", 0),
    ("github", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})", 0),
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
                         "supabase", "aws_id", "github", "slack", "google"})

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


def _replacement(kind: str, s: str, m: re.Match[str]) -> str | None:
    """What replaces match `m` (whose spans index into `s`), or None to keep the text."""
    if kind in _WORD_START and not _starts_word(s, m.start()):
        return None
    if m.re.groupindex.get("val") is None:
        return REDACTED
    head = s[m.start("head"):m.end("head")]
    value = s[m.start("val"):m.end("val")]
    if kind == "bearer" and not _looks_like_token(value):
        return None
    if kind == "basic" and not _looks_like_basic_credentials(value):
        return None
    if kind == "label" and value[:1] in ("'", '"'):
        return head + value[0] + REDACTED + value[0]
    return head + REDACTED


def _matches_at_gates(rx: re.Pattern[str], scan: str, gates: tuple[str, ...]) -> Iterator[re.Match[str]]:
    """Matches of `rx` that start exactly where a gate word occurs, left to right, not overlapping.

    Used for the label rule: scanning a long traceback with a many-branched pattern is slow,
    while finding its few gate words with str.find is nearly free.
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


# Short strings repeat (context keys, codes, user messages, the same failure over and over), so
# their results are cached; long ones (tracebacks, bodies) are scanned each time.
_CACHE_MAX_CHARS = 512


def redact_text(s: str) -> str:
    """`s` with every secret-shaped value replaced by [REDACTED]."""
    if not isinstance(s, str):
        s = str(s)
    if len(s) <= _CACHE_MAX_CHARS:
        return _redact_short(s)
    return _redact_scan(s)


@lru_cache(maxsize=8192)
def _redact_short(s: str) -> str:
    return _redact_scan(s)


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
            elif kind == "label":
                new = _apply(kind, _matches_at_gates(rx_plain, low, gates), s)
            else:
                new = _apply(kind, rx_plain.finditer(low), s)
        else:
            for gate in gates:
                if gate in s:
                    break
            else:
                continue
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
