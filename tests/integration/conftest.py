"""Real Postgres and Redis for integration tests, shared by every adapter's tests.

Where they come from, in order: testcontainers when a Docker engine answers; otherwise TEST_DATABASE_URL
and TEST_REDIS_URL (the Makefile sets both for the local services). With neither, or when the URL does
not answer, the run fails and says what to set: a skipped integration test passes silently, so never skip.
Tests use random ids rather than truncating tables, so one database serves every test and every run.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import asyncpg_url, create_engine, libpq_url
from adapters.postgres.migrate import upgrade
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory

_HOW = (
    "integration tests need Postgres and Redis: start a Docker engine (testcontainers), or set "
    "TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test and "
    "TEST_REDIS_URL=redis://127.0.0.1:6379/15 (the Makefile does) and start those services"
)


def _docker_answers() -> bool:
    try:
        # By name: mypy would otherwise resolve `docker` to this repository's docker/ folder of images.
        docker = importlib.import_module("docker")
        docker.from_env(timeout=3).ping()
    except Exception:  # no client library, no socket, engine down: all mean "use the environment"
        return False
    return True


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return _docker_answers()


@pytest.fixture(scope="session")
def database_url(docker_available: bool) -> Iterator[str]:
    """A reachable PostgreSQL URL (postgresql+asyncpg://...)."""
    if docker_available:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
            yield _answering_database(container.get_connection_url())
        return
    yield _answering_database(_from_env("TEST_DATABASE_URL"))


@pytest.fixture(scope="session")
def redis_url(docker_available: bool) -> Iterator[str]:
    """A reachable Redis URL (redis://...); tests share it, so keys must carry random ids."""
    if docker_available:
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield _answering_redis(f"redis://{host}:{port}/15")
        return
    yield _answering_redis(_from_env("TEST_REDIS_URL"))


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """``database_url`` brought to the latest migration, once per session."""
    upgrade(database_url)
    return database_url


@pytest.fixture
async def postgres_engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    # Per test: an engine's pool belongs to the event loop it was used on, and each test has its own loop.
    engine = create_engine(migrated_database_url, pool_size=2, max_overflow=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(postgres_engine: AsyncEngine) -> PostgresUnitOfWorkFactory:
    return PostgresUnitOfWorkFactory(postgres_engine)


def _from_env(variable: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        pytest.fail(f"{variable} is not set and no Docker engine answers; {_HOW}", pytrace=False)
    return value


def _answering_database(url: str) -> str:
    async def ping() -> None:
        import asyncpg

        connection = await asyncpg.connect(libpq_url(url), timeout=5)
        await connection.close()

    try:
        asyncio.run(ping())
    except Exception as error:
        pytest.fail(
            f"Postgres at {_safe(url)} does not answer ({type(error).__name__}: {error}); {_HOW}", False
        )
    return url


def _answering_redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except Exception as error:
        pytest.fail(f"Redis at {url} does not answer ({type(error).__name__}: {error}); {_HOW}", False)
    finally:
        client.close()
    return url


def _safe(url: str) -> str:
    return asyncpg_url(url).render_as_string(hide_password=True)
