"""Alembic environment: the URL comes from ``config.attributes`` (see adapters.postgres.migrate), no ini."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.postgres.engine import asyncpg_url
from adapters.postgres.tables import include_name, metadata

# Any constant shared by every replica: concurrent `opusclip migrate` runs queue up instead of racing.
_MIGRATION_LOCK_ID = 0x0F05C11F

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url")
    if not url:
        raise RuntimeError("set config.attributes['database_url'] (use adapters.postgres.migrate.upgrade)")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True, include_name=include_name
    )
    with context.begin_transaction():
        # Transaction-scoped, so it is released by the commit even if this process dies half-way.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        context.run_migrations()


async def _run_online() -> None:
    # NullPool: a migration uses one connection once; nothing should outlive asyncio.run's loop.
    engine = create_async_engine(asyncpg_url(_url()), poolclass=pool.NullPool, connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=asyncpg_url(_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
