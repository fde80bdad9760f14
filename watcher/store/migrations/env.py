"""Alembic environment: run against the connection watcher hands over (see store.migrate)."""

from alembic import context

from watcher.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("watcher migrations run through watcher.store.migrate(), which passes a connection")
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
