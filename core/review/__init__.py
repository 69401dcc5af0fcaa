"""The review queue and its decisions: list what needs review, accept / reject / edit by hand, and in bulk.

Reviewers and admins review every conversation; anyone else reaches none (core.auth.permissions:
conversation / review), so their queue is empty and an id answers "not found". Every decision
carries the reviewer, writes a `review_decisions` row and an audit row in its own transaction;
a bulk decision is a resumable operation (see core.review._bulk).
"""

from core.review._bulk import (
    OPERATION_TYPE,
    BulkResult,
    Interrupted,
    bulk_decide,
    bulk_operation_key,
    count_to_decide,
    interrupted_bulk,
)
from core.review._decide import DECISIONS, Decision, checked_note, decide, edit_turn
from core.review._queue import STATUSES, ReviewFilter, Status, failed_checks, review_item, review_page

__all__ = [
    "DECISIONS",
    "OPERATION_TYPE",
    "STATUSES",
    "BulkResult",
    "Decision",
    "Interrupted",
    "ReviewFilter",
    "Status",
    "bulk_decide",
    "bulk_operation_key",
    "checked_note",
    "count_to_decide",
    "decide",
    "edit_turn",
    "failed_checks",
    "interrupted_bulk",
    "review_item",
    "review_page",
]
