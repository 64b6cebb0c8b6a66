"""The engine and probe against a real Postgres, a closed port and a server that never answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import asyncpg_url, create_engine, libpq_url
from adapters.postgres.probe import PostgresProbe
from adapters.postgres.unit_of_work import Gate, PostgresUnitOfWorkFactory
from domain.errors import DependencyUnavailable
from domain.ports import DependencyProbe

# Generous bound on a failure that the engine must report in about connect_timeout: a hang fails the test.
_BOUND_S = 10


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word, like a wedged database."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


async def _select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(sa.text("SELECT 1"))).scalar_one())


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_plain_postgres_urls_are_normalised_to_asyncpg(scheme: str) -> None:
    url = asyncpg_url(f"{scheme}://user:pw@db.internal:6543/clips?sslmode=require")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database) == ("db.internal", 6543, "clips")
    assert dict(url.query) == {"ssl": "require"}


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_libpq_clients_get_sslmode_as_libpq_spells_it(scheme: str) -> None:
    # psycopg (the queue) and asyncpg's own connect (job changes) refuse asyncpg-dialect ``ssl=``.
    url = libpq_url(f"{scheme}://user:pw@db.internal:6543/clips?sslmode=require")
    assert url == "postgresql://user:pw@db.internal:6543/clips?sslmode=require"


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_url("mysql://root@localhost/db")


async def test_a_plain_postgresql_url_connects(migrated_database_url: str) -> None:
    plain = libpq_url(migrated_database_url)
    engine = create_engine(plain, pool_size=1, max_overflow=0)
    try:
        assert await _select_one(engine) == 1
    finally:
        await engine.dispose()


async def test_a_closed_port_is_reported_as_unreachable() -> None:
    port = _closed_port()
    engine = create_engine(f"postgresql://postgres:s3cret@127.0.0.1:{port}/test", pool_size=1, max_overflow=0)
    try:
        async with asyncio.timeout(_BOUND_S):
            with pytest.raises(
                DependencyUnavailable, match=f"127.0.0.1:{port}/test is unreachable"
            ) as caught:
                await _select_one(engine)
    finally:
        await engine.dispose()
    assert "s3cret" not in str(caught.value)


async def test_a_server_that_never_answers_fails_after_the_connect_timeout(silent_server: int) -> None:
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{silent_server}/test",
        pool_size=1,
        max_overflow=0,
        connect_timeout=0.5,
    )
    try:
        async with asyncio.timeout(_BOUND_S):
            with pytest.raises(DependencyUnavailable, match=r"no answer within 0\.5 s"):
                await _select_one(engine)
    finally:
        await engine.dispose()


async def test_probe_is_healthy_against_the_real_database(postgres_engine: AsyncEngine) -> None:
    probe: DependencyProbe = PostgresProbe(postgres_engine)
    assert (probe.name, probe.required) == ("postgres", True)
    await probe.check()


async def test_probe_reports_an_unreachable_database() -> None:
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/test", pool_size=1, max_overflow=0
    )
    try:
        async with asyncio.timeout(_BOUND_S):
            with pytest.raises(DependencyUnavailable, match="unreachable"):
                await PostgresProbe(engine).check()
    finally:
        await engine.dispose()


async def test_probe_gives_up_on_a_silent_server_after_its_own_timeout(silent_server: int) -> None:
    # The engine would wait 3 s to connect; the probe's shorter budget must win.
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{silent_server}/test", pool_size=1, max_overflow=0
    )
    try:
        async with asyncio.timeout(_BOUND_S):
            with pytest.raises(DependencyUnavailable, match=r"no answer within 0\.3 s"):
                await PostgresProbe(engine, timeout=0.3).check()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_dropped_connection_is_dependency_unavailable_then_replaced(
    migrated_database_url: str, read_only: bool
) -> None:
    # One pooled connection and no pre-ping (the API's settings): kill it as a database restart would.
    engine = create_engine(migrated_database_url, pool_size=1, max_overflow=0, pre_ping=False)
    uow = PostgresUnitOfWorkFactory(engine)
    killer = create_engine(migrated_database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            backend = (await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        async with killer.connect() as connection:
            await connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(DependencyUnavailable):
            async with uow(read_only=read_only) as tx:
                await tx.jobs.get("after the restart")
        async with uow(read_only=read_only) as tx:  # the pool replaced the dead connection
            assert await tx.jobs.get("after the restart") is None
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_busy_pool_connections_are_handed_out_in_turn(migrated_database_url: str) -> None:
    # One connection, three tasks that each take it back-to-back: with the pool's own queue a task that just
    # gave the connection back takes it again ahead of the others, who time out; the gate serves in turn.
    engine = create_engine(migrated_database_url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    uow = PostgresUnitOfWorkFactory(engine, gate=Gate(slots=1, timeout=0.5))
    served = [0, 0, 0]
    failures: list[BaseException] = []

    async def busy(me: int) -> None:
        deadline = asyncio.get_running_loop().time() + 2.0
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with uow(read_only=True) as tx:
                    await tx.jobs.get("nobody")
                served[me] += 1
            except Exception as error:  # what a request would have answered with
                failures.append(error)
                return

    try:
        await asyncio.gather(*(busy(me) for me in range(3)))
    finally:
        await engine.dispose()
    assert not failures, failures[:1]
    assert min(served) >= sum(served) / 6, f"unfair turns: {served}"
