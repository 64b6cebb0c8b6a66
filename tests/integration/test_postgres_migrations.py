"""Alembic owns the schema: migrations reproduce tables.py exactly, re-run harmlessly, and revert cleanly.

Each test runs in its own scratch database so downgrading never pulls tables from under other tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from adapters.postgres.engine import asyncpg_url, create_engine, libpq_url
from adapters.postgres.migrate import downgrade, upgrade
from adapters.postgres.tables import include_name, metadata
from domain.jobs import new_id

HEAD = "0004"
# The queue's own tables, created by procrastinate's schema script in migration 0002.
PROCRASTINATE_TABLES = {
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(libpq_url(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    name = f"migrations_{new_id().replace('-', '')[:16]}"
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    yield asyncpg_url(database_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _inspect(url: str) -> tuple[set[str], list[Any], str | None]:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:

            def look(sync: sa.Connection) -> tuple[set[str], list[Any], str | None]:
                tables = set(sa.inspect(sync).get_table_names())
                context = MigrationContext.configure(
                    sync, opts={"compare_type": True, "include_name": include_name}
                )
                return tables, list(compare_metadata(context, metadata)), context.get_current_revision()

            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def test_upgrade_builds_exactly_the_schema_of_tables_py(scratch_url: str) -> None:
    upgrade(scratch_url)
    tables, diff, revision = asyncio.run(_inspect(scratch_url))
    assert tables == set(metadata.tables) | {"alembic_version"} | PROCRASTINATE_TABLES
    assert diff == []
    assert revision == HEAD


def test_upgrade_twice_changes_nothing(scratch_url: str) -> None:
    upgrade(scratch_url)
    first = asyncio.run(_inspect(scratch_url))
    upgrade(scratch_url)
    assert asyncio.run(_inspect(scratch_url)) == first


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(scratch_url: str) -> None:
    upgrade(scratch_url)
    downgrade(scratch_url)
    tables, _, revision = asyncio.run(_inspect(scratch_url))
    assert tables == {"alembic_version"}
    assert revision is None
    upgrade(scratch_url)
    assert asyncio.run(_inspect(scratch_url))[1] == []


async def test_upgrade_works_when_called_inside_a_running_event_loop(scratch_url: str) -> None:
    # An async caller (a start-up hook) must not trip over alembic's own asyncio.run.
    upgrade(scratch_url)
    _, diff, revision = await _inspect(scratch_url)
    assert (diff, revision) == ([], HEAD)


def test_concurrent_upgrades_serialise_on_the_migration_lock(scratch_url: str) -> None:
    # Replicas may run `opusclip migrate` at once. Separate processes, as in production: alembic keeps
    # its migration context in module globals, so threads of one process cannot migrate concurrently.
    code = "import sys; from adapters.postgres.migrate import upgrade; upgrade(sys.argv[1])"
    root = Path(__file__).resolve().parents[2]
    runs = [subprocess.Popen([sys.executable, "-c", code, scratch_url], cwd=root) for _ in range(3)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    _, diff, revision = asyncio.run(_inspect(scratch_url))
    assert (diff, revision) == ([], HEAD)
