"""The one schema: SQLAlchemy Core tables shared by SQLite and Postgres.

Timestamps are stored as UTC (aware datetimes in Python on both engines, via `UtcDateTime`).
Dialect differences (hour buckets, full-text search, upserts) live in `core.store.dialect`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from core.config import get_settings
from core.redact import redact_cut

__all__ = [
    "metadata",
    "error_logs",
    "error_log_rollup",
    "recovery_checkpoints",
    "conversation_drafts",
    "batch_jobs",
    "batch_items",
    "batch_resumes",
    "conversations",
    "app_settings",
    "app_users",
    "audit_events",
    "templates",
    "template_versions",
    "review_decisions",
    "message_batch_submissions",
    "OwnerId",
    "utcnow",
    "RedactedText",
    "UtcDateTime",
]

metadata = MetaData()

# BIGINT on Postgres, INTEGER on SQLite (so it stays an alias of rowid and autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; timestamptz on Postgres, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A person's id (app_users.id, a uuid as text) on the rows they own; NULL: nobody's (the system's).
def OwnerId() -> String:  # noqa: N802 - reads as a column type
    return String(36)


class RedactedText(TypeDecorator[str]):
    """Text written through the redactor, then cut: status reasons and error texts.

    Every write of these columns passes here, whoever the caller, so a secret in an upstream
    error cannot reach the store by being kept as a reason instead of an error-log row.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect):  # type: ignore[override]
        if value is None:
            return None

        text = redact_cut(value, get_settings().stored_reason_max_chars)
        return text.replace("\x00", "") if "\x00" in text else text


error_logs = Table(
    "error_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("error_id", String(36), nullable=False, unique=True),  # uuid4 hex, shown to users
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("error_type", String(32), nullable=False),
    Column("error_code", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("user_message", Text),
    Column("context", JSON),
    Column("stack_trace", Text),
    Column("component", String(64)),
    Column("request_id", String(128)),
    Column("operation_id", String(64)),  # batch id when the error happened inside a batch
    Column("attempt", Integer),
    Column("fingerprint", String(32), nullable=False),
    Column("user_id", OwnerId()),  # whose action caused it (app_users.id); NULL: the system's
    Column("session_id", String(64)),
    Column("environment", String(32)),
    Column("is_recoverable", Boolean, nullable=False, default=False),
    Column("recovery_action", String(32)),
    Column("recovered", Boolean, nullable=False, default=False),  # recovered automatically (e.g. a retry won)
    Column("resolved", Boolean, nullable=False, default=False),
    Column("resolved_at", UtcDateTime()),
    Column("resolved_by", OwnerId()),
    Index("ix_error_logs_created_at", "created_at"),
    Index("ix_error_logs_user", "user_id", "created_at"),
    Index("ix_error_logs_severity_created", "severity", "created_at"),
    Index("ix_error_logs_type_created", "error_type", "created_at"),
    # type + severity + time range is the list's usual filter: counted from the index alone
    Index("ix_error_logs_type_severity_created", "error_type", "severity", "created_at"),
    # groups by fingerprint read everything they aggregate from this index, not the table (0004)
    Index("ix_error_logs_fingerprint_cover", "fingerprint", "created_at", "severity", "resolved", "operation_id"),
    Index("ix_error_logs_operation", "operation_id"),
    Index("ix_error_logs_request", "request_id"),
    # a search word that names a code ("timeout") selects that code's rows in the time range from the index (0010)
    Index("ix_error_logs_code_created", "error_code", "created_at"),
)

# Hourly counts of error_logs, kept in step by triggers (migration 0003), so statistics over
# weeks read a few thousand rollup rows instead of every error row.
error_log_rollup = Table(
    "error_log_rollup",
    metadata,
    Column("bucket", String(13), nullable=False),  # UTC hour as text: 'YYYY-MM-DD HH'
    Column("error_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("error_code", String(64), nullable=False),
    Column("is_recoverable", Boolean, nullable=False),
    Column("recovered", Boolean, nullable=False),
    Column("resolved", Boolean, nullable=False),
    Column("n", BigInteger, nullable=False, default=0),
    PrimaryKeyConstraint("bucket", "error_type", "severity", "error_code", "is_recoverable", "recovered",
                         "resolved", name="pk_error_log_rollup"),
    sqlite_with_rowid=False,  # clustered on the key: a range of hours is one sequential read
)

recovery_checkpoints = Table(
    "recovery_checkpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("operation_type", String(32), nullable=False),  # "batch"
    Column("operation_id", String(64), nullable=False),
    Column("completed_count", Integer, nullable=False, default=0),
    Column("failed_count", Integer, nullable=False, default=0),
    Column("skipped_count", Integer, nullable=False, default=0),
    Column("last_processed_index", Integer),
    Column("state", JSON),  # config needed to resume
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("expires_at", UtcDateTime()),
    Column("owner_id", OwnerId()),
    UniqueConstraint("operation_type", "operation_id", name="uq_checkpoint_operation"),
    Index("ix_checkpoints_owner", "owner_id"),
)

conversation_drafts = Table(
    "conversation_drafts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", OwnerId(), nullable=False),  # its owner (app_users.id)
    Column("session_id", String(64)),
    Column("template", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("partial_text", Text, nullable=False, default=""),
    Column("turns", JSON),
    Column("status", String(16), nullable=False, default="in_progress"),  # in_progress|completed|failed|discarded
    Column("progress", Float, nullable=False, default=0.0),
    Column("error_message", RedactedText()),
    Column("conversation_id", String(36)),
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("expires_at", UtcDateTime()),
    Index("ix_drafts_user_status", "user_id", "status", "updated_at"),
    Index("ix_drafts_status_updated", "status", "updated_at"),  # Recovery: drafts left open, of any user
)

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200)),
    Column("template", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("config", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="queued"),  # queued|running|paused|failed|cancelled|completed
    Column("status_reason", RedactedText()),
    # who paused it: "user" (stays paused) or "breaker" (the worker resumes it after the cool-down)
    Column("pause_kind", String(16)),
    Column("total_items", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False, default=4),
    Column("created_by", String(128)),  # the owner's name when it was made, for display
    Column("owner_id", OwnerId()),
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UtcDateTime()),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    # Message Batches mode (0018): how its items reach the model, and a spend cap in dollars
    Column("mode", String(20), nullable=False, default="online", server_default="online"),  # online|message_batches
    Column("budget_usd", Float),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0, server_default="0"),
    Column("cache_creation_tokens", BigInteger, nullable=False, default=0, server_default="0"),
    # the optional LLM judge's calls, apart from generation (0017)
    Column("judge_cost_usd", Float, nullable=False, default=0.0, server_default="0"),
    Index("ix_batch_jobs_status", "status", "lease_expires_at"),
    Index("ix_batch_jobs_owner", "owner_id", "created_at"),
    Index("ix_batch_jobs_created", "created_at", "id"),  # the batch list, newest first (0020)
)

batch_items = Table(
    "batch_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), ForeignKey("batch_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("item_index", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending|running|done|failed|skipped
    Column("attempts", Integer, nullable=False, default=0),  # failed attempts of its own (model, reply, commit)
    # times its worker died with it in flight: counted apart, against settings.item_max_lost_attempts
    Column("lost_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", RedactedText()),
    Column("last_error_code", String(64)),
    Column("claimed_by", String(128)),
    Column("claimed_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("conversation_id", String(36)),
    # times routing sent its conversation back to be generated again (0017), against the template's limit
    Column("regenerations", Integer, nullable=False, default=0, server_default="0"),
    # the Message Batches submission it is in flight in (0018); NULL: not submitted
    Column("submission_id", String(36)),
    # the batch's owner, copied at insert (0019): Postgres' policies read it on the row, without a
    # look-up of batch_jobs per statement; a policy keeps it equal to the batch's
    Column("owner_id", OwnerId()),
    UniqueConstraint("batch_id", "item_index", name="uq_batch_item"),
    # pending items in index order: a claim reads the first few entries, however many are done
    Index("ix_batch_items_status_index", "batch_id", "status", "item_index"),
)

batch_resumes = Table(
    "batch_resumes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), ForeignKey("batch_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("resumed_by", OwnerId()),
    Column("resumed_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("failed_only", Boolean, nullable=False, default=False),
    Column("requeued_count", Integer, nullable=False, default=0),
    Column("previous_status", String(16)),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), ForeignKey("batch_jobs.id", ondelete="SET NULL")),
    Column("item_index", Integer),
    Column("draft_id", String(36)),
    Column("template", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("system_prompt", Text),
    Column("turns", JSON, nullable=False),  # [{"role": "user"|"assistant", "content": str}]
    Column("turn_count", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("status", String(16), nullable=False, default="ok"),
    Column("created_by", String(128)),  # the owner's name when it was made, for display
    Column("owner_id", OwnerId()),
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    # error tracking
    Column("last_error", RedactedText()),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error_at", UtcDateTime()),
    Column("is_recovering", Boolean, nullable=False, default=False),
    Column("recovery_attempts", Integer, nullable=False, default=0),
    Column("original_conversation_id", String(36)),
    # quality gate and review (0017; core.quality, core.review)
    Column("review_status", String(16), nullable=False, default="needs_review",
           server_default="needs_review"),  # accepted|needs_review|rejected|regenerate
    Column("quality_score", Integer),  # 0-100, NULL: not checked yet
    Column("checks", JSON),  # [{"name", "passed", "hard", "detail"}]
    Column("score_parts", JSON),  # {"check name": points}
    Column("content_hash", String(64)),  # of the normalised text: exact duplicates
    Column("minhash", LargeBinary),  # MinHash signature over word shingles: near-duplicates
    Column("duplicate_of", String(36)),  # the conversation it duplicates
    Column("duplicate_kind", String(8)),  # exact|near
    Column("duplicate_similarity", Float),
    Column("duplicate_passage", RedactedText()),
    Column("judge", JSON),  # {"scores": {...}, "reasons": {...}} from the optional LLM judge
    Column("judge_status", String(16)),  # NULL: not judged; ok|failed
    Column("judge_cost_usd", Float, nullable=False, default=0.0, server_default="0"),
    Column("original_turns", JSON),  # the turns as generated, once a reviewer edits one
    Column("reviewed_by", OwnerId()),
    Column("reviewed_at", UtcDateTime()),
    Column("review_note", RedactedText()),
    # Message Batches and prompt caching (0018): the mode it was generated in, its cache usage
    Column("mode", String(20), nullable=False, default="online", server_default="online"),
    Column("cache_read_tokens", Integer, nullable=False, default=0, server_default="0"),
    Column("cache_creation_tokens", Integer, nullable=False, default=0, server_default="0"),
    # a replayed batch item cannot write a second conversation
    UniqueConstraint("batch_id", "item_index", name="uq_conversation_batch_item"),
    Index("ix_conversations_created", "created_at"),
    Index("ix_conversations_template", "template", "created_at"),
    Index("ix_conversations_draft", "draft_id", "id"),  # Recovery: conversations whose draft is gone
    Index("ix_conversations_owner", "owner_id", "created_at"),
    Index("ix_conversations_review", "review_status", "created_at"),  # the review queue, oldest first
    Index("ix_conversations_hash", "content_hash"),
)

# One row per review decision (core.review): who decided what on which conversation, and in which
# bulk operation. (operation_id, conversation_id) is unique, so a bulk decision resumed after a
# crash cannot apply twice to the same conversation.
review_decisions = Table(
    "review_decisions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("conversation_id", String(36), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("decision", String(16), nullable=False),  # accepted|rejected|edited
    Column("note", RedactedText()),
    Column("reviewer_id", OwnerId()),
    Column("operation_id", String(36)),  # the recovery_checkpoints row of a bulk decision; NULL: one by hand
    Column("decided_at", UtcDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("operation_id", "conversation_id", name="uq_review_decision_operation"),
    Index("ix_review_decisions_conversation", "conversation_id", "decided_at"),
)

# Message Batches mode (core.batches): one row per remote batch, written in the same transaction
# that marks its items submitted and before the remote call, so a worker that dies after the call
# finds the remote batch again by its items' custom_ids, and no item is submitted twice.
message_batch_submissions = Table(
    "message_batch_submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), ForeignKey("batch_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("remote_id", String(128)),  # the API's msgbatch_... id; NULL until stored after create
    # submitting|in_progress|canceling|ended|collected|failed
    Column("state", String(16), nullable=False, default="submitting"),
    Column("item_indexes", JSON, nullable=False),  # the batch item indexes in it
    Column("request_count", Integer, nullable=False),
    Column("request_bytes", BigInteger, nullable=False, default=0),
    Column("counts", JSON),  # the remote request_counts: processing, succeeded, errored, expired, canceled
    Column("results_done", Integer, nullable=False, default=0),  # results committed so far (resume point)
    Column("last_error", RedactedText()),
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("submitted_at", UtcDateTime()),
    Column("ended_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("remote_id", name="uq_message_batch_remote"),
    Index("ix_message_batch_submissions_batch", "batch_id", "state"),
)

app_settings = Table(
    "app_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_by", OwnerId()),
    Column("updated_at", UtcDateTime(), nullable=False, default=utcnow),
)

# People: created at first sign-in (OIDC issuer + subject), or the local user(s) without sign-in
# (issuer "local", subject the STUDIO_USER name).
app_users = Table(
    "app_users",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid4 as text
    Column("issuer", String(255), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("email", String(320)),
    Column("display_name", String(200)),
    Column("role", String(16), nullable=False, default="analyst"),  # analyst | reviewer | admin
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("last_seen_at", UtcDateTime()),
    UniqueConstraint("issuer", "subject", name="uq_app_users_identity"),
    Index("ix_app_users_email", "email"),
)

# Append-only: who did what to what, written in the same transaction as the action.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    Column("actor_id", OwnerId()),  # NULL: the system
    Column("actor_label", String(200)),
    Column("action", String(48), nullable=False),
    Column("target_kind", String(32), nullable=False),
    Column("target_id", String(64)),
    Column("detail", JSON),  # redacted
    Index("ix_audit_target", "target_kind", "target_id", "created_at"),
    Index("ix_audit_actor", "actor_id", "created_at"),
    Index("ix_audit_created", "created_at"),
)

# Templates as data (core.templates). A template is its slug and whether it is archived; what it
# says lives in its versions, each immutable once written (title and description too, so an edit
# of any field is a new version and the template row changes only when it is archived).
templates = Table(
    "templates",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid as text
    Column("slug", String(64), nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("archived_at", UtcDateTime()),
    Column("archived_by", OwnerId()),
    Column("created_by", OwnerId()),  # who made version 1; NULL: seeded (the built-ins)
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("slug", name="uq_templates_slug"),
)

template_versions = Table(
    "template_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("template_id", String(36), ForeignKey("templates.id", ondelete="RESTRICT"), nullable=False),
    Column("version", Integer, nullable=False),
    # title, description, system prompt, user template, variables, edge cases, turn range, model, max tokens
    Column("content", JSON, nullable=False),
    Column("created_by", OwnerId()),  # its author; NULL: seeded
    Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("template_id", "version", name="uq_template_version"),
)
