"""Alembic environment: runs on the connection `core.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from core.store.schema import metadata

target_metadata = metadata

connection = context.config.attributes.get("connection")
if connection is None:  # plain `alembic upgrade head`: use the configured database
    from core.auth.claims import AS_LOGIN_ROLE
    from core.store.engine import get_engine

    # as the login role, as core.store.migrate runs it: not as a person (whose claims would need
    # the users table before it exists)
    with get_engine().connect().execution_options(**{AS_LOGIN_ROLE: True}) as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
