"""The automatic quality gate: checks, heuristic score, near-duplicates and routing.

    assess(turns, params) -> Assessment        checks + score + content hash + MinHash signature (pure)
    check_conversation(turns, params)          the named checks alone, each hard or soft with a detail
    score(checks) -> Score                     0-100 and the points per check
    NearDuplicateIndex                         in-memory MinHash LSH over compact signatures
    shared_index(engine).prepare(batch_id)     this process's index over the accepted set (+ the batch)
    find_duplicate(conn, assessment, ...)      exact (store) or near (index) duplicate, with shared passage
    thresholds(params, engine)                 (accept, review) scores: the template version's, else settings
    route(assessment, duplicate, accept=, review=)  accepted | needs_review | regenerate
    gate_values(assessment, duplicate, status) the conversation row's quality columns
    recheck(engine, batch_id=None)             run the gate over stored rows (quality_score NULL)
    judge_conversation(engine, id)             the optional LLM judge on one stored conversation (off by default)
"""

from core.quality.checks import CHECK_NAMES, HARD_CHECKS, CheckResult, check_conversation, content_words
from core.quality.fingerprint import (
    content_hash,
    conversation_text,
    normalise,
    shared_passage,
    signature,
    signature_bytes,
    signature_from_bytes,
    similarity,
)
from core.quality.gate import (
    ACCEPTED,
    NEEDS_REVIEW,
    REGENERATE,
    REJECTED,
    Assessment,
    Duplicate,
    assess,
    find_duplicate,
    gate_values,
    judge_wanted,
    recheck,
    route,
    thresholds,
)
from core.quality.index import Match, NearDuplicateIndex, bands_for
from core.quality.judge import RUBRIC, Judgement, ajudge, judge_conversation, parse_judgement
from core.quality.score import POINTS, Score, score
from core.quality.shared import StoreIndex, reset_shared_indexes, shared_index

__all__ = [
    "ACCEPTED",
    "CHECK_NAMES",
    "HARD_CHECKS",
    "NEEDS_REVIEW",
    "POINTS",
    "REGENERATE",
    "REJECTED",
    "RUBRIC",
    "Assessment",
    "CheckResult",
    "Duplicate",
    "Judgement",
    "Match",
    "NearDuplicateIndex",
    "Score",
    "StoreIndex",
    "ajudge",
    "assess",
    "bands_for",
    "check_conversation",
    "content_hash",
    "content_words",
    "conversation_text",
    "find_duplicate",
    "gate_values",
    "judge_conversation",
    "judge_wanted",
    "normalise",
    "parse_judgement",
    "recheck",
    "reset_shared_indexes",
    "route",
    "score",
    "shared_index",
    "shared_passage",
    "signature",
    "signature_bytes",
    "signature_from_bytes",
    "similarity",
    "thresholds",
]
