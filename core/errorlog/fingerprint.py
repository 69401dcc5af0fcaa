"""Fingerprints: the same failure gets the same short hash, whatever ids and numbers it carried."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

__all__ = ["fingerprint", "normalise_message"]

# Only the head of a message decides its group; long tails (bodies, dumps) add noise, not identity.
_MESSAGE_HEAD_CHARS = 500

# Order matters: quoted text first (it may hold numbers), then ids, then bare numbers.
_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), "<str>"),
    (re.compile(r"\b(?:req|request|msg|toolu|batch|op)_[A-Za-z0-9]{6,}\b"), "<id>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"), "<uuid>"),
    # hex ids (commit hashes, object ids, 0x addresses): 8+ hex digits with at least one digit,
    # so plain words made of a-f ("deadbeef" aside) survive
    (re.compile(r"\b(?:0x)?(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_message(message: str) -> str:
    """`message` with quoted strings, request ids, uuids, hex ids and numbers replaced by placeholders."""
    text = message[:_MESSAGE_HEAD_CHARS]
    for pattern, placeholder in _NORMALISERS:
        text = pattern.sub(placeholder, text)
    return text.strip()


@lru_cache(maxsize=4096)  # the same failure repeats; normalising it again is wasted work
def fingerprint(error_type: str, error_code: str, component: str | None, message: str) -> str:
    """A stable 16-hex-digit hash of type, code, component and the normalised message."""
    key = "\x1f".join((error_type or "", error_code or "", component or "", normalise_message(message or "")))
    return hashlib.sha1(key.encode("utf-8", errors="replace"), usedforsecurity=False).hexdigest()[:16]
