"""What two conversations are compared by: a hash of the normalised text and a MinHash signature.

The normalised text is the messages' content, lowercased, with every run of whitespace and
punctuation collapsed to one space: two conversations that differ only in case, spacing or
punctuation are exact duplicates. The signature is datasketch's MinHash (its default affine32
scheme, so each value fits in 32 bits) over word shingles, stored as little-endian uint32 bytes:
4 bytes per hash value, 512 bytes at 128.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

import numpy as np
from datasketch import MinHash  # type: ignore[import-untyped]

from core.redact import redact_cut

__all__ = ["content_hash", "conversation_text", "normalise", "shared_passage", "signature", "signature_bytes",
           "signature_from_bytes", "similarity"]

_NOT_WORD = re.compile(r"[\W_]+")
_SCHEME = "affine32"
_DTYPE = np.dtype("<u4")


def conversation_text(turns: Sequence[Mapping[str, Any]]) -> str:
    """The messages' content, one per line (the roles are not part of what is compared)."""
    return "\n".join(str(t.get("content") or "") for t in turns)


def normalise(text: str) -> str:
    """Lowercased, whitespace and punctuation collapsed to single spaces."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


def content_hash(normalised: str) -> str:
    """sha256 hex of the normalised text: equal for exact duplicates."""
    return hashlib.sha256(normalised.encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    # made once per size: MinHash draws them from a seeded generator on every construction otherwise
    a, b = MinHash(num_perm=num_perm, scheme=_SCHEME).permutations
    return a, b


def signature(normalised: str, *, num_perm: int, shingle_words: int) -> np.ndarray:
    """The MinHash of the text's word shingles (`shingle_words` words each; fewer words: one shingle)."""
    words = normalised.split()
    k = shingle_words
    shingles = {" ".join(words[i:i + k]).encode() for i in range(max(1, len(words) - k + 1))}
    m = MinHash(num_perm=num_perm, permutations=_permutations(num_perm), scheme=_SCHEME)
    m.update_batch(shingles)
    return np.asarray(m.hashvalues, dtype=_DTYPE)


def signature_bytes(sig: np.ndarray) -> bytes:
    return np.asarray(sig, dtype=_DTYPE).tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=_DTYPE)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity the two signatures estimate (the share of equal hash values)."""
    if len(a) != len(b) or not len(a):
        return 0.0
    return float(np.count_nonzero(a == b)) / len(a)


def shared_passage(text: str, other: str, *, max_chars: int) -> str:
    """The longest run of words `text` shares with `other` (compared normalised), redacted and cut.

    The words come from `text`, so what is shown is the conversation's own text.
    """
    words = text.split()
    a = [normalise(w) for w in words]
    b = [normalise(w) for w in other.split()]
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    if match.size == 0:
        return ""
    return redact_cut(" ".join(words[match.a:match.a + match.size]), max_chars)
