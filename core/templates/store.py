"""Templates in the database: list, read a version, save a new version, archive; and the cached lookup.

Every save is a new immutable version (a save that changes nothing makes none); a batch and
each conversation name the version they were generated from (`template_version` in their
params), so editing a template never changes what a running batch generates. Who may do what
is core.auth.permissions (Kind.TEMPLATE): every signed-in person views and creates; archiving
is for the author of the template's latest version and for admins. On Postgres Row Level
Security (migration 0013) enforces the same.

`resolve(slug, version)` is what generation asks: a version once read is kept for the process
(it cannot change). A database not migrated yet (a first start, a unit test without a store)
has the six built-ins exactly as migration 0013 will seed them.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from core.auth.actor import current_actor, system_actor
from core.auth.claims import AS_LOGIN_ROLE
from core.auth.permissions import Action, Kind, require
from core.config import get_settings
from core.errors import ErrorCode, ValidationError
from core.resilience import run_db
from core.store.schema import batch_jobs, conversations, template_versions, templates, utcnow
from core.store.tx import read_conn, write_tx
from core.templates.builtin import BUILTINS
from core.templates.model import Template, TemplateContent
from core.templates.validate import check

__all__ = [
    "archive_template",
    "forget_cache",
    "get_template",
    "known_names",
    "list_templates",
    "resolve",
    "save_template",
    "template_history",
    "template_names",
    "usage_counts",
]

_CACHE_SIZE = 512


def _refuse(message: str, code: ErrorCode, field: str = "template") -> ValidationError:
    return ValidationError(message, code=code, field=field, user_message=message)


def _latest_version() -> Any:
    v = template_versions.alias("v_latest")
    return sa.select(sa.func.max(v.c.version)).where(v.c.template_id == templates.c.id).scalar_subquery()


def _select() -> sa.Select[Any]:
    return sa.select(templates.c.id.label("template_id"), templates.c.slug, templates.c.archived,
                     template_versions.c.id, template_versions.c.version, template_versions.c.content,
                     template_versions.c.created_by, template_versions.c.created_at
                     ).join(template_versions, template_versions.c.template_id == templates.c.id)


def _template(row: Any) -> Template:
    return Template(name=row.slug, content=TemplateContent.from_json(row.content), version=int(row.version),
                    id=row.id, template_id=row.template_id, archived=bool(row.archived),
                    created_by=row.created_by, created_at=row.created_at)


def _unknown(conn: Connection, slug: str, version: int | None) -> ValidationError:
    names = conn.execute(sa.select(templates.c.slug).where(templates.c.archived.is_(False))
                         .order_by(templates.c.slug)).scalars().all()
    shown = slug[:64]
    if version is not None and conn.execute(sa.select(templates.c.id).where(templates.c.slug == slug)).first():
        return _refuse(f"The template {shown!r} has no version {version}.", ErrorCode.UNKNOWN_TEMPLATE)
    listed = ", ".join(names)
    return ValidationError(
        f"Unknown template {shown!r}; choose one of: {listed}.", code=ErrorCode.UNKNOWN_TEMPLATE, field="template",
        user_message=f"There is no template named {shown!r}. Choose one of: {listed}.")


def _read(conn: Connection, slug: str, version: int | None) -> Template:
    query = _select().where(templates.c.slug == slug)
    query = query.where(template_versions.c.version == (_latest_version() if version is None else version))
    row = conn.execute(query).first()
    if row is None:
        raise _unknown(conn, slug, version)
    return _template(row)


def list_templates(engine: Engine, *, include_archived: bool = False) -> list[Template]:
    """The latest version of every template, by slug (archived ones only with `include_archived`)."""
    if not _migrated(engine):
        return list(BUILTINS.values())
    require(current_actor(engine), Action.VIEW, Kind.TEMPLATE, None, missing="There are no templates to show.")
    query = _select().where(template_versions.c.version == _latest_version()).order_by(templates.c.slug)
    if not include_archived:
        query = query.where(templates.c.archived.is_(False))
    with engine.connect() as conn:
        return [_template(r) for r in conn.execute(query)]


def template_names(engine: Engine, *, include_archived: bool = False) -> list[str]:
    return [t.name for t in list_templates(engine, include_archived=include_archived)]


def known_names(engine: Engine | None = None) -> list[str]:
    """Every template's slug, archived ones too, read as the system: what a command's argument is checked against.

    Only names: a command line is parsed before it knows who runs it, and every signed-in person
    may see every template anyway.
    """
    if engine is None:
        from core.store import get_engine

        engine = get_engine()
    if not _migrated(engine):
        return list(BUILTINS)
    with read_conn(engine, actor=system_actor()) as conn:
        return list(conn.execute(sa.select(templates.c.slug).order_by(templates.c.slug)).scalars())


def get_template(engine: Engine, slug: str, version: int | None = None) -> Template:
    """Version `version` of `slug` (None: the latest); ValidationError(field="template") if there is none."""
    if not _migrated(engine):
        return _seeded(slug, version)
    require(current_actor(engine), Action.VIEW, Kind.TEMPLATE, None, missing=f"There is no template named {slug!r}.")
    with engine.connect() as conn:
        return _read(conn, slug, version)


def template_history(engine: Engine, slug: str) -> list[Template]:
    """Every version of `slug`, oldest first."""
    require(current_actor(engine), Action.VIEW, Kind.TEMPLATE, None, missing=f"There is no template named {slug!r}.")
    with engine.connect() as conn:
        rows = conn.execute(_select().where(templates.c.slug == slug).order_by(template_versions.c.version)).all()
        if not rows:
            raise _unknown(conn, slug, None)
    return [_template(r) for r in rows]


def save_template(engine: Engine, slug: str, content: TemplateContent, *, based_on: int | None = None) -> Template:
    """Save `content` as the next version of `slug` (version 1 of a new template) and return it.

    Refused, with nothing written, when the content breaks a rule (TemplateInvalid, every problem
    listed), when the template is archived, or when `based_on` (the version an edit started from)
    is no longer the latest. Content equal to the latest version's is not saved again.
    """
    check(content, slug=slug)
    actor = current_actor(engine)
    require(actor, Action.CREATE, Kind.TEMPLATE, actor.owner_id, missing="Sign in to save templates.")
    payload = content.to_json()

    def _write() -> Template:
        now = utcnow()
        with write_tx(engine) as conn:
            row = conn.execute(sa.select(templates).where(templates.c.slug == slug)).mappings().first()
            if row is None:
                if based_on is not None:
                    raise _refuse(f"The template {slug!r} does not exist any more.", ErrorCode.TEMPLATE_CONFLICT)
                template_id, version = str(uuid.uuid4()), 1
            else:
                template_id = row["id"]
                if row["archived"]:
                    raise _refuse(f"The template {slug!r} is archived; save it under a new name.",
                                  ErrorCode.TEMPLATE_ARCHIVED)
                latest = _read(conn, slug, None)
                if based_on is not None and latest.version != based_on:
                    raise _refuse(f"Version {latest.version} of {slug!r} was saved after you began this edit "
                                  f"(from version {based_on}); reload it and make your change again.",
                                  ErrorCode.TEMPLATE_CONFLICT)
                if latest.content.to_json() == payload:
                    return latest
                version = latest.version + 1
                if version > get_settings().template_max_versions:
                    raise _refuse(f"The template {slug!r} has {latest.version:,} versions, the most one may have; save "
                                  "it under a new name.", ErrorCode.TOO_LONG)
            version_id = str(uuid.uuid4())
            try:
                if row is None:
                    conn.execute(templates.insert().values(id=template_id, slug=slug, archived=False,
                                                           created_by=actor.owner_id, created_at=now))
                conn.execute(template_versions.insert().values(
                    id=version_id, template_id=template_id, version=version, content=payload,
                    created_by=actor.owner_id, created_at=now))
            except sa.exc.IntegrityError:
                # two saves at the same moment: the other one took this version number (or this name)
                raise _refuse(f"Someone saved {slug!r} at the same moment; reload it and save again.",
                              ErrorCode.TEMPLATE_CONFLICT) from None
            from core.auth.audit import AuditAction, audit

            audit(conn, AuditAction.TEMPLATE_SAVE, "template", template_id, {"slug": slug, "version": version},
                  actor=actor)
            return Template(name=slug, content=content, version=version, id=version_id, template_id=template_id,
                            created_by=actor.owner_id, created_at=now)

    return run_db(_write)


def archive_template(engine: Engine, slug: str) -> Template:
    """Archive `slug`: gone from the pickers, kept for the batches and conversations that name its versions.

    Only the author of its latest version or an admin may; anyone else is told it does not exist.
    """
    actor = current_actor(engine)

    def _write() -> Template:
        with write_tx(engine) as conn:
            latest = _read(conn, slug, None)
            require(actor, Action.ARCHIVE, Kind.TEMPLATE, latest.created_by,
                    missing=f"There is no template named {slug!r} that you may archive.")
            if latest.archived:
                return latest
            now = utcnow()
            conn.execute(templates.update().where(templates.c.id == latest.template_id).values(
                archived=True, archived_at=now, archived_by=actor.owner_id))
            from core.auth.audit import AuditAction, audit

            audit(conn, AuditAction.TEMPLATE_ARCHIVE, "template", latest.template_id,
                  {"slug": slug, "version": latest.version}, actor=actor)
            return _read(conn, slug, None)

    archived = run_db(_write)
    forget_cache()
    return archived


def usage_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """Per template slug, how many batches and conversations the actor may see were made from it."""
    from core.auth.permissions import where

    actor = current_actor(engine)
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for key, table in (("batches", batch_jobs), ("conversations", conversations)):
            kind = Kind.BATCH if table is batch_jobs else Kind.CONVERSATION
            query = (sa.select(table.c.template, sa.func.count()).where(
                where(actor, Action.VIEW, kind, table.c.owner_id)).group_by(table.c.template))
            for slug, n in conn.execute(query):
                counts.setdefault(slug, {"batches": 0, "conversations": 0})[key] = int(n)
    return counts


# ---- the lookup generation uses --------------------------------------------------------------------------

_lock = threading.Lock()
_versions: OrderedDict[tuple[str, str, int], Template] = OrderedDict()
_migrated_urls: set[str] = set()


def forget_cache() -> None:
    """Drop what the lookup remembers (tests; an archive, so pickers see it at once)."""
    with _lock:
        _versions.clear()
        _migrated_urls.clear()


def _migrated(engine: Engine) -> bool:
    key = str(engine.url)
    if key in _migrated_urls:
        return True
    # as the login role: before the migration there are no users (nor roles) to begin a transaction as
    with engine.connect().execution_options(**{AS_LOGIN_ROLE: True}) as conn:
        found = sa.inspect(conn).has_table("template_versions")
    if found:
        with _lock:
            _migrated_urls.add(key)
    return found


def _seeded(slug: str, version: int | None) -> Template:
    template = BUILTINS.get(slug)
    if template is None or version not in (None, 1):
        listed = ", ".join(BUILTINS)
        raise ValidationError(
            f"Unknown template {slug[:64]!r}; choose one of: {listed}.", code=ErrorCode.UNKNOWN_TEMPLATE,
            field="template", user_message=f"There is no template named {slug[:64]!r}. Choose one of: {listed}.")
    return template


def resolve(slug: str, version: int | None = None, *, engine: Engine | None = None) -> Template:
    """The template generation uses: version `version` of `slug` (None: the latest), read once per process."""
    if engine is None:
        from core.store import get_engine

        engine = get_engine()
    key = str(engine.url)
    if version is not None:
        with _lock:
            cached = _versions.get((key, slug, version))
            if cached is not None:
                _versions.move_to_end((key, slug, version))
                return cached
    if not _migrated(engine):
        return _seeded(slug, version)
    # as the system: a generation thread or a worker may carry no person, and every signed-in person
    # reads every template anyway (the pages' listings check the actor)
    with read_conn(engine, actor=system_actor()) as conn:
        found = _read(conn, slug, version)
    with _lock:
        # the first read of a version wins, so every caller gets the same object for it
        found = _versions.setdefault((key, slug, found.version), found)
        while len(_versions) > _CACHE_SIZE:
            _versions.popitem(last=False)
    return found
