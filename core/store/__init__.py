"""Storage: the one schema, the engine factory, migrations and transactional helpers."""

from core.store.engine import create_store_engine, get_engine, ping, reset_engine
from core.store.migrate import migrate
from core.store.schema import metadata, utcnow

__all__ = ["create_store_engine", "get_engine", "metadata", "migrate", "ping", "reset_engine", "utcnow"]
