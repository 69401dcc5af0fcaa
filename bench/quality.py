"""Quality gate speed and memory: checks, fingerprints and near-duplicate lookups against a large accepted set.

    .venv/bin/python bench/quality.py [--accepted 100000] [--queries 10000] [--no-store] [--no-lsh]

Synthesises conversations with the sandbox's own text generator (core.llm.sandbox.text.compose_turns)
over the built-in templates' personas, emotions and topics, 4 to 10 messages each. The accepted
set is signed and indexed (core.quality.NearDuplicateIndex); then the query conversations, of
which 5 % are near-copies (last message rewritten) and 5 % exact repeats of accepted ones, go
through, in the same run:
  checks only             check_conversation + score
  checks + fingerprints   assess(): checks, score, content hash, MinHash signature
  checks + dedup          assess() + the index lookup against the accepted set and the same batch,
                          each query then added to the batch's scope (as the item commit does)
Memory: the index's arrays, the traced Python allocations of building it (tracemalloc), the
process's peak RSS; then, unless --no-store, the same accepted set loaded from a SQLite file in
chunks by core.quality.StoreIndex (what a worker does at its first commit), and unless --no-lsh
datasketch's MinHashLSH holding the same signatures, for comparison.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--accepted", type=int, default=100_000)
ARGS.add_argument("--queries", type=int, default=10_000)
ARGS.add_argument("--no-store", action="store_true", help="skip loading the accepted set from SQLite")
ARGS.add_argument("--no-lsh", action="store_true", help="skip datasketch's MinHashLSH comparison")


def _conversations(n: int, seed: int):
    from core.llm.sandbox.text import Brief, compose_turns
    from core.templates.builtin import BUILTINS

    templates = list(BUILTINS.values())
    rng = random.Random(seed)
    for i in range(n):
        t = templates[i % len(templates)]
        p, e, tp = rng.choice(t.personas), rng.choice(t.emotions), rng.choice(t.topics)
        turns = rng.choice((4, 6, 8, 10))
        convo = [{"role": r.lower(), "content": c} for r, c in compose_turns(Brief(p, e, tp, turns), f"{seed}-{i}")]
        yield convo, {"persona": p, "emotion": e, "topic": tp, "turns": turns}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rate(label: str, n: int, seconds: float) -> None:
    print(f"  {label:<24} {n:>7,} in {seconds:6.2f} s  {n / seconds:>9,.0f} conversations/s")


def main() -> None:
    args = ARGS.parse_args()
    from core.config import get_settings
    from core.quality import (
        NearDuplicateIndex,
        assess,
        check_conversation,
        conversation_text,
        normalise,
        score,
        signature,
    )

    s = get_settings()
    print(f"settings: {s.quality_minhash_perms} hash values, {s.quality_shingle_words}-word shingles, "
          f"threshold {s.quality_near_duplicate_threshold}")

    # ---- the accepted set --------------------------------------------------------------------------
    t0 = time.perf_counter()
    import numpy as np

    sigs = np.zeros((args.accepted, s.quality_minhash_perms), dtype=np.uint32)
    keep: list[tuple[list[dict[str, str]], dict[str, object]]] = []  # a few, to copy from
    for i, (convo, params) in enumerate(_conversations(args.accepted, seed=1)):
        sigs[i] = signature(normalise(conversation_text(convo)), num_perm=s.quality_minhash_perms,
                            shingle_words=s.quality_shingle_words)
        if i < args.queries // 10:
            keep.append((convo, params))
    signed = time.perf_counter() - t0
    print(f"accepted set: {args.accepted:,} sandbox conversations signed in {signed:.1f} s "
          f"(generation included)")

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    index = NearDuplicateIndex(num_perm=s.quality_minhash_perms, threshold=s.quality_near_duplicate_threshold)
    ids = [f"accepted-{i}" for i in range(args.accepted)]
    index.add_many(ids, sigs, accepted=[True] * args.accepted, batch_ids=[None] * args.accepted)
    built = time.perf_counter() - t0  # under tracemalloc
    traced = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    print(f"index: {len(index):,} rows built in {built:.2f} s (under tracemalloc); arrays {index.nbytes / 2**20:.1f} MiB, "
          f"traced +{traced:.1f} MiB (ids and maps included); {index.bands} bands x {index.rows_per_band} rows")

    # ---- the queries ------------------------------------------------------------------------------
    queries = list(_conversations(args.queries, seed=2))
    n_copies = args.queries // 20
    for j in range(n_copies):  # 5 % near-copies, 5 % exact repeats of accepted conversations
        convo, params = keep[j % len(keep)]
        queries[2 * j] = ([*convo[:-1], {"role": "assistant", "content": "Glad that helped. Come back any time."}],
                          params)
        queries[2 * j + 1] = (list(convo), params)
    print(f"queries: {args.queries:,} ({n_copies:,} near-copies, {n_copies:,} exact repeats of accepted ones)")

    def checks_only() -> None:
        for convo, params in queries:
            score(check_conversation(convo, params, s))

    def fingerprints() -> None:
        for convo, params in queries:
            assess(convo, params, s)

    flags: dict[str, int] = {}

    def dedup(round_: int) -> None:
        hashes: set[str] = set()
        flagged_copies = flagged_repeats = flagged_fresh = 0
        for i, (convo, params) in enumerate(queries):
            a = assess(convo, params, s)
            exact = a.content_hash in hashes  # the store's indexed lookup, here a set of the batch's hashes
            match = index.nearest(a.signature, batch_id=f"bench-{round_}")
            if exact or match:
                if i < 2 * n_copies and i % 2:
                    flagged_repeats += 1
                elif i < 2 * n_copies:
                    flagged_copies += 1
                else:
                    flagged_fresh += 1
            index.add(f"query-{round_}-{i}", a.signature, accepted=False, batch_id=f"bench-{round_}")
            hashes.add(a.content_hash)
        flags.update(copies=flagged_copies, repeats=flagged_repeats, fresh=flagged_fresh)

    # the machine is shared: each phase runs three times, interleaved, and the fastest run counts
    best = {"checks only": float("inf"), "checks + fingerprints": float("inf"), "checks + dedup": float("inf")}
    for round_ in range(3):
        for label, run in (("checks only", checks_only), ("checks + fingerprints", fingerprints),
                           ("checks + dedup", lambda r=round_: dedup(r))):
            t0 = time.perf_counter()
            run()
            best[label] = min(best[label], time.perf_counter() - t0)
    for label, seconds in best.items():
        _rate(label, args.queries, seconds)
    print(f"  flagged {flags['repeats']:,} of {n_copies:,} exact repeats, {flags['copies']:,} of {n_copies:,} near-copies "
          f"(last message rewritten: short ones fall under the threshold), {flags['fresh']:,} of the "
          f"{args.queries - 2 * n_copies:,} other conversations")
    print(f"peak RSS so far: {_rss_mb():.0f} MiB")

    if not args.no_store:
        _store_load(sigs, s)
    if not args.no_lsh:
        _datasketch_lsh(sigs, s)
    print(f"peak RSS: {_rss_mb():.0f} MiB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _store_load(sigs, s) -> None:
    """The accepted set written to a SQLite file, then loaded by a StoreIndex in chunks."""
    import sqlalchemy as sa

    from core.quality import StoreIndex
    from core.quality.fingerprint import signature_bytes
    from core.store import create_store_engine, migrate
    from core.store.schema import conversations, utcnow

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        from core.config import reload_settings

        reload_settings()
        engine = create_store_engine(os.environ["DATABASE_URL"])
        migrate(engine, force=True)
        now = utcnow()
        t0 = time.perf_counter()
        rows = [{"id": f"{i:08d}-0000-0000-0000-000000000000", "template": "bench", "model": "sandbox",
                 "params": {}, "turns": [], "turn_count": 0, "created_at": now, "review_status": "accepted",
                 "quality_score": 100, "content_hash": f"{i:064d}", "minhash": signature_bytes(sig)}
                for i, sig in enumerate(sigs)]
        with engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                conn.execute(sa.insert(conversations), rows[start:start + 10_000])
        del rows
        print(f"store: {len(sigs):,} accepted rows written to SQLite in {time.perf_counter() - t0:.1f} s")
        gc.collect()
        t0 = time.perf_counter()
        loaded = StoreIndex(engine).prepare()  # timed without tracemalloc, which slows every allocation
        took = time.perf_counter() - t0
        del loaded
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        loaded = StoreIndex(engine).prepare()
        traced = (tracemalloc.get_traced_memory()[0] - before) / 2**20
        peak = (tracemalloc.get_traced_memory()[1] - before) / 2**20
        tracemalloc.stop()
        print(f"  StoreIndex loaded {len(loaded):,} signatures in {took:.2f} s "
              f"({s.quality_index_chunk_rows:,} per chunk): held +{traced:.1f} MiB, peak while loading "
              f"+{peak:.1f} MiB")
        engine.dispose()


def _datasketch_lsh(sigs, s) -> None:
    """datasketch's MinHashLSH over the same signatures, for the memory comparison."""
    from datasketch import MinHash, MinHashLSH

    perms = MinHash(num_perm=s.quality_minhash_perms).permutations
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=s.quality_near_duplicate_threshold, num_perm=s.quality_minhash_perms)
    for i, sig in enumerate(sigs):
        lsh.insert(i, MinHash(hashvalues=sig, permutations=perms, scheme="affine32"), check_duplication=False)
    took = time.perf_counter() - t0
    traced = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    print(f"datasketch MinHashLSH, same {len(sigs):,} signatures: +{traced:.1f} MiB traced, built in {took:.1f} s "
          "(under tracemalloc)")
    del lsh


if __name__ == "__main__":
    main()
