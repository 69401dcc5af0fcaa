"""What two conversations are compared by: a hash of the normalised text and a MinHash signature.

The normalised text is the messages' content, lowercased, with every run of whitespace and
punctuation collapsed to one space: two conversations that differ only in case, spacing or
punctuation are exact duplicates. The signature is datasketch's MinHash (its default affine32
scheme, so each value fits in 32 bits) over word shingles, stored as little-endian uint32 bytes:
4 bytes per hash value, 512 bytes at 128.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zlib
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

import numpy as np
from datasketch import MinHash  # type: ignore[import-untyped]

from core.redact import redact_cut

__all__ = ["content_hash", "conversation_text", "normalise", "shared_passage", "shingle_hashes", "signature",
           "signature_bytes", "signature_from_bytes", "similarity"]

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


# a shingle's hash: its words' crc32 values, each times its position's odd constant, summed mod 2**64 and
# folded to 32 bits. Stable across processes (signatures are stored and compared later), and one C call
# per word instead of joining, encoding and hashing every shingle; datasketch mixes each value
# (its MurmurHash3 finalizer) before permuting it, so a plain hash is enough.
_POSITION = np.random.default_rng(5_021).integers(1, 2**62, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_local = threading.local()


def _identity(value: int) -> int:
    return value


def _minhash(num_perm: int) -> MinHash:
    """This thread's MinHash of `num_perm` values, cleared (made once: its permutations cost more than a use)."""
    held = getattr(_local, "minhash", None)
    if held is None or held.num_perm != num_perm:
        held = _local.minhash = MinHash(num_perm=num_perm, hashfunc=_identity, scheme=_SCHEME)
    else:
        held.clear()
    return held


def shingle_hashes(normalised: str, shingle_words: int) -> np.ndarray:
    """uint32 hashes of the text's `shingle_words`-word shingles (fewer words: one shingle of them all)."""
    words = normalised.split()
    if not words:
        return np.zeros(0, dtype=np.uint32)
    k = min(shingle_words, len(words), len(_POSITION))
    ids = np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    n = len(words) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        h += ids[j:j + n] * _POSITION[j]  # wraps mod 2**64, as intended
    return ((h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def signature(normalised: str, *, num_perm: int, shingle_words: int) -> np.ndarray:
    """datasketch's MinHash of the text's word shingles, as uint32 values."""
    m = _minhash(num_perm)
    hashes = shingle_hashes(normalised, shingle_words)
    if len(hashes):
        m.update_batch(hashes.tolist())
    return np.array(m.hashvalues, dtype=_DTYPE)


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
