"""An in-memory near-duplicate index: MinHash LSH (banding) over compact signatures.

datasketch's MinHashLSH keeps, per key, a bytes object and a Python set for every band: measured
at 300 MB for 100,000 signatures of 128 values (bench/quality.py prints the figure). This index
does the same banding over numpy arrays instead: the signatures in one uint32 matrix (4 bytes a
value) and, per band, one uint64 key and one int32 row in sorted arrays (12 bytes), about 620
bytes per conversation at 128 values: 62 MB for 100,000. The number of bands and rows per band
are chosen for the threshold as datasketch chooses them (the least weighted sum of the false
positive and false negative probabilities); candidates are then kept only if their signatures
estimate a Jaccard similarity at or above the threshold.

Rows carry a scope: accepted (compared with everything) or of a batch (compared only within that
batch), so one index serves "against the accepted set" and "within the batch".
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Match", "NearDuplicateIndex", "bands_for"]

_GRID = np.linspace(0.0, 1.0, 1001)
_MERGE_AT = 4096  # recent rows are searched one by one, then merged into the sorted arrays


@functools.lru_cache(maxsize=8)
def bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) with bands x rows <= num_perm, the least false positives + false negatives."""
    best: tuple[float, int, int] | None = None
    for b in range(2, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1 - (1 - _GRID ** r) ** b  # the chance a pair of similarity s becomes a candidate
            below, above = _GRID <= threshold, _GRID >= threshold
            fp = float(np.trapezoid(p[below], _GRID[below]))
            fn = float(np.trapezoid(1 - p[above], _GRID[above]))
            cost = 0.5 * fp + 0.5 * fn
            if best is None or cost < best[0]:
                best = (cost, b, r)
    assert best is not None  # num_perm >= 2: the loops ran
    return best[1], best[2]


@dataclass(frozen=True)
class Match:
    """The most similar indexed conversation: its id and the estimated Jaccard similarity."""

    conversation_id: str
    similarity: float


class NearDuplicateIndex:
    """Signatures of conversations, each accepted or of a batch; `nearest` finds the closest one in scope."""

    def __init__(self, *, num_perm: int, threshold: float) -> None:
        self.num_perm, self.threshold = num_perm, threshold
        self.bands, self.rows_per_band = bands_for(threshold, num_perm)
        rng = np.random.default_rng(20_261_201)  # fixed: band keys are only compared within one process
        self._mult = (rng.integers(1, 2**63, size=(self.bands, self.rows_per_band), dtype=np.uint64) * 2 + 1
                      ).astype(np.uint64)
        self._lock = threading.RLock()
        self._sigs = np.zeros((0, num_perm), dtype=np.uint32)
        self._accepted = np.zeros(0, dtype=bool)
        self._batch = np.zeros(0, dtype=np.int32)  # a code per batch id; -1: none
        self._alive = np.zeros(0, dtype=bool)
        self._n = 0
        self._ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._batch_codes: dict[str, int] = {}
        self._keys = np.zeros(0, dtype=np.uint64)  # every band's keys, sorted (bands use their own multipliers)
        self._key_rows = np.zeros(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}  # band key -> rows, not merged yet
        self._recent_rows = 0

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._row_of

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays (signatures, scopes, band keys); ids and dicts come on top."""
        return int(self._sigs.nbytes + self._accepted.nbytes + self._batch.nbytes + self._alive.nbytes
                   + self._keys.nbytes + self._key_rows.nbytes)

    def _band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """(n, bands) uint64 keys: each band's values, multiplied by that band's odd constants, summed."""
        used = sigs[:, :self.bands * self.rows_per_band].astype(np.uint64)
        shaped = used.reshape(len(sigs), self.bands, self.rows_per_band)
        return (shaped * self._mult).sum(axis=2, dtype=np.uint64)  # wraps mod 2**64, as intended

    def _code(self, batch_id: str | None) -> int:
        if batch_id is None:
            return -1
        return self._batch_codes.setdefault(batch_id, len(self._batch_codes))

    def reserve(self, rows: int) -> None:
        """Room for `rows` more rows at once (a load that knows its count grows the arrays once, not by doubling)."""
        with self._lock:
            self._grow(rows, exact=True)

    def _grow(self, extra: int, *, exact: bool = False) -> None:
        need = self._n + extra
        if need <= len(self._sigs):
            return
        size = need if exact else max(need, 2 * len(self._sigs), 1024)
        for name, fill in (("_sigs", 0), ("_accepted", False), ("_batch", -1), ("_alive", False)):
            old = getattr(self, name)
            new = np.full((size, *old.shape[1:]), fill, dtype=old.dtype)
            new[:self._n] = old[:self._n]
            setattr(self, name, new)

    def add_many(self, ids: Sequence[str], sigs: np.ndarray, *, accepted: Sequence[bool],
                 batch_ids: Sequence[str | None]) -> int:
        """Index these conversations (one signature row each); ids already indexed only change scope. New rows."""
        with self._lock:
            fresh: list[int] = []
            for i, conv_id in enumerate(ids):
                row = self._row_of.get(conv_id)
                if row is not None:
                    self._accepted[row] = bool(accepted[i])
                    continue
                fresh.append(i)
            if not fresh:
                return 0
            sigs = np.asarray(sigs, dtype=np.uint32)[fresh]
            if sigs.shape[1] != self.num_perm:
                raise ValueError(f"signatures have {sigs.shape[1]} values; this index holds {self.num_perm}")
            self._grow(len(fresh))
            rows = np.arange(self._n, self._n + len(fresh), dtype=np.int32)
            self._sigs[rows] = sigs
            self._accepted[rows] = [bool(accepted[i]) for i in fresh]
            self._batch[rows] = [self._code(batch_ids[i]) for i in fresh]
            self._alive[rows] = True
            for row, i in zip(rows.tolist(), fresh, strict=True):
                self._ids.append(ids[i])
                self._row_of[ids[i]] = row
            self._n += len(fresh)
            keys = self._band_keys(sigs)
            if len(fresh) >= _MERGE_AT:
                self._merge(keys.ravel(), np.repeat(rows, self.bands))
            else:
                for row, row_keys in zip(rows.tolist(), keys.tolist(), strict=True):
                    for key in row_keys:
                        self._recent.setdefault(key, []).append(row)
                self._recent_rows += len(fresh)
                if self._recent_rows >= _MERGE_AT:
                    self._merge_recent()
            return len(fresh)

    def add(self, conversation_id: str, sig: np.ndarray, *, accepted: bool, batch_id: str | None) -> None:
        self.add_many([conversation_id], np.asarray(sig).reshape(1, -1), accepted=[accepted], batch_ids=[batch_id])

    def set_accepted(self, conversation_id: str, accepted: bool) -> None:
        """Change a row's scope (a reviewer accepted it, or took the acceptance back)."""
        with self._lock:
            row = self._row_of.get(conversation_id)
            if row is not None:
                self._accepted[row] = accepted

    def remove(self, conversation_id: str) -> None:
        with self._lock:
            row = self._row_of.pop(conversation_id, None)
            if row is not None:
                self._alive[row] = False
                self._ids[row] = None

    def drop_batch(self, batch_id: str) -> int:
        """Forget the batch's rows that are not accepted, and compact the arrays; how many were dropped."""
        with self._lock:
            code = self._batch_codes.pop(batch_id, None)
            if code is None:
                return 0
            n = self._n
            keep = self._alive[:n] & ~((self._batch[:n] == code) & ~self._accepted[:n])
            dropped = int(np.count_nonzero(self._alive[:n]) - np.count_nonzero(keep))
            self._batch[:n][self._batch[:n] == code] = -1  # its accepted rows stay, in no batch's scope
            kept = np.flatnonzero(keep)
            ids = [self._ids[int(r)] for r in kept]
            self._sigs = self._sigs[kept].copy()
            self._accepted, self._batch = self._accepted[kept].copy(), self._batch[kept].copy()
            self._alive = np.ones(len(kept), dtype=bool)
            self._n, self._ids = len(kept), ids
            self._row_of = {conv_id: row for row, conv_id in enumerate(ids) if conv_id is not None}
            self._recent, self._recent_rows = {}, 0
            self._keys, self._key_rows = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
            if self._n:
                rows = np.arange(self._n, dtype=np.int32)
                self._merge(self._band_keys(self._sigs).ravel(), np.repeat(rows, self.bands))
            return dropped

    def _merge_recent(self) -> None:
        keys = np.fromiter((k for k, rows in self._recent.items() for _ in rows), dtype=np.uint64)
        rows = np.fromiter((r for rows in self._recent.values() for r in rows), dtype=np.int32)
        self._recent, self._recent_rows = {}, 0
        self._merge(keys, rows)

    def _merge(self, keys: np.ndarray, rows: np.ndarray) -> None:
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._key_rows = np.concatenate([self._key_rows, rows.astype(np.int32)])[order]

    def nearest(self, sig: np.ndarray, *, batch_id: str | None = None, exclude: str | None = None) -> Match | None:
        """The most similar conversation at or above the threshold, accepted or of `batch_id`; None if none is."""
        sig = np.asarray(sig, dtype=np.uint32)
        if sig.shape != (self.num_perm,):
            return None  # signed with other settings: not comparable
        with self._lock:
            if not self._row_of:
                return None
            qkeys = self._band_keys(sig.reshape(1, -1))[0]
            lo = np.searchsorted(self._keys, qkeys, side="left")
            hi = np.searchsorted(self._keys, qkeys, side="right")
            found = [self._key_rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
            found.extend(np.asarray(self._recent[k], dtype=np.int32) for k in qkeys.tolist() if k in self._recent)
            if not found:
                return None
            rows = np.unique(np.concatenate(found))
            code = self._batch_codes.get(batch_id, -2) if batch_id is not None else -2
            in_scope = self._alive[rows] & (self._accepted[rows] | (self._batch[rows] == code))
            rows = rows[in_scope]
            if exclude is not None and exclude in self._row_of:
                rows = rows[rows != self._row_of[exclude]]
            if not len(rows):
                return None
            sims = np.count_nonzero(self._sigs[rows] == sig, axis=1) / self.num_perm
            best = int(np.argmax(sims))
            if sims[best] < self.threshold:
                return None
            conv_id = self._ids[int(rows[best])]
            return Match(conv_id, float(sims[best])) if conv_id is not None else None
