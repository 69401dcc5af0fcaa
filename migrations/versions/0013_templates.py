"""Templates as data: `templates` and `template_versions`, the six built-ins seeded as version 1.

A template row is its slug, whether it is archived, who made it and when; what it says is in
its versions, each immutable once written (core.templates). The built-ins are seeded with
fixed ids and no author (created_by NULL): only an admin may archive them.

Postgres: Row Level Security enabled and forced on both tables, in the form of 0011 and 0012
(policies on `(select auth.uid())`, the person's role from the `studio_role` claim, one policy per
command, nothing for a transaction without a person). Every signed-in person
reads every template and adds templates and versions as themselves; a version is never updated
or deleted (the grants of `authenticated` leave those out); a template row is updated (archived)
or deleted only by the author of its latest version or an admin. The seed goes in before RLS is
switched on, as the login role.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from core.store.rls import Policy, apply_policies, drop_policies
from core.store.schema import metadata

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("templates", "template_versions")

UID = "(select auth.uid())::text"
ADMIN = "(select public.studio_is_admin())"
SIGNED_IN = "(select auth.uid()) is not null"
# the author of the template's latest version: who may archive it (with admins)
LATEST_AUTHOR = (f"exists (select 1 from public.template_versions v where v.template_id = templates.id "
                 f"and v.created_by = {UID} and v.version = (select max(w.version) from public.template_versions w "
                 f"where w.template_id = templates.id))")

# table -> [(policy, command, using, with check)]
POLICIES: dict[str, list[Policy]] = {
    "templates": [
        ("templates_select", "SELECT", SIGNED_IN, None),
        ("templates_insert", "INSERT", None, f"created_by = {UID} or {ADMIN}"),
        ("templates_update", "UPDATE", f"{LATEST_AUTHOR} or {ADMIN}", f"{LATEST_AUTHOR} or {ADMIN}"),
        ("templates_delete", "DELETE", f"{LATEST_AUTHOR} or {ADMIN}", None),
    ],
    "template_versions": [
        ("template_versions_select", "SELECT", SIGNED_IN, None),
        ("template_versions_insert", "INSERT", None, f"created_by = {UID} or {ADMIN}"),
    ],
}


def _seed(bind: sa.Connection) -> None:
    from core.templates.builtin import BUILTINS

    templates, versions = metadata.tables["templates"], metadata.tables["template_versions"]
    present = set(bind.execute(sa.select(templates.c.slug)).scalars())
    now = sa.func.current_timestamp()
    for slug, template in BUILTINS.items():
        if slug in present:
            continue
        bind.execute(templates.insert().values(id=template.template_id, slug=slug, archived=False, created_by=None,
                                               created_at=now))
        bind.execute(versions.insert().values(id=template.id, template_id=template.template_id, version=1,
                                              content=template.content.to_json(), created_by=None, created_at=now))


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    metadata.create_all(bind, tables=[metadata.tables[n] for n in TABLES if n not in existing])
    _seed(bind)
    if bind.dialect.name != "postgresql":
        return
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.templates TO authenticated, service_role")
    op.execute("GRANT SELECT, INSERT ON public.template_versions TO authenticated")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.template_versions TO service_role")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON public.template_versions FROM authenticated")
    apply_policies(op.execute, POLICIES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_policies(op.execute, POLICIES)
    for table in reversed(TABLES):
        op.drop_table(table)
