"""PostgresJobChanges against a real Postgres: the jobs table's trigger announces what a reader sees change,
on commit only, to the watchers of that job, and the listener comes back after its connection is killed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import pytest

from adapters.postgres.engine import libpq_url
from adapters.postgres.job_changes import APPLICATION_NAME, PostgresJobChanges
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from domain.jobs import Job, new_id, utcnow
from domain.ports import JobWatch

LEASE = timedelta(minutes=1)
PATIENCE = 30.0  # a bound on a wait that ends as soon as the notification arrives, not a timing target


@pytest.fixture
async def changes(migrated_database_url: str) -> AsyncIterator[PostgresJobChanges]:
    listener = await PostgresJobChanges.open(migrated_database_url)
    assert listener.listening
    yield listener
    await listener.close()


async def _add(uow: PostgresUnitOfWorkFactory) -> str:
    job = Job(id=new_id(), owner=f"user-{new_id()}", source="https://example.org/v.mp4", options={})
    async with uow() as unit:
        await unit.jobs.add(job)
        await unit.commit()
    return job.id


async def _change(
    uow: PostgresUnitOfWorkFactory, job_id: str, change: Callable[[Job], None], *, commit: bool = True
) -> None:
    async with uow() as unit:
        job = await unit.jobs.get(job_id, for_update=True)
        assert job is not None
        change(job)
        await unit.jobs.update(job)
        if commit:
            await unit.commit()


async def _heard(watch: JobWatch) -> bool:
    async with asyncio.timeout(PATIENCE):
        return await watch.changed()


async def _already_heard(watch: JobWatch) -> bool:
    """Whether a notification is waiting now, without waiting for one (an unset one times out at once)."""
    try:
        async with asyncio.timeout(0):
            return await watch.changed()
    except TimeoutError:
        return False


def _claim(job: Job) -> None:
    job.claim("t", "w", utcnow(), LEASE)


async def test_a_committed_change_wakes_that_jobs_watchers_only(
    changes: PostgresJobChanges, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    a, b = await _add(uow_factory), await _add(uow_factory)
    async with changes.watch(a) as watch_a, changes.watch(b) as watch_b:
        await _change(uow_factory, b, _claim)
        assert await _heard(watch_b)
        # b's lease is renewed (nothing a reader sees changes), then a starts running. Notifications come
        # in commit order on one connection: once a's is heard, b's would already have been.
        await _change(uow_factory, b, lambda job: job.report("t", "starting", 0.0, utcnow(), LEASE))
        await _change(uow_factory, a, _claim)
        assert await _heard(watch_a)
        assert not await _already_heard(watch_b)
        await _change(uow_factory, b, lambda job: job.report("t", "analyze", 0.25, utcnow(), LEASE))
        assert await _heard(watch_b)
        assert not await _already_heard(watch_a)


async def test_a_rolled_back_change_is_never_announced(
    changes: PostgresJobChanges, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    a, b = await _add(uow_factory), await _add(uow_factory)
    async with changes.watch(a) as watch_a, changes.watch(b) as watch_b:
        await _change(uow_factory, a, _claim, commit=False)
        await _change(uow_factory, b, _claim)
        assert await _heard(watch_b)
        assert not await _already_heard(watch_a)


async def _listener_pids(url: str) -> list[int]:
    connection = await asyncpg.connect(libpq_url(url), timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _kill(url: str, pids: list[int]) -> None:
    connection = await asyncpg.connect(libpq_url(url), timeout=5)
    try:
        for pid in pids:
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_a_killed_connection_wakes_everyone_and_listening_resumes(
    changes: PostgresJobChanges, uow_factory: PostgresUnitOfWorkFactory, migrated_database_url: str
) -> None:
    job_id = await _add(uow_factory)
    async with changes.watch(job_id) as watch:
        before = await _listener_pids(migrated_database_url)
        assert before
        await _kill(migrated_database_url, before)
        # Changes may go unheard while nobody listens: every watcher is told to look.
        assert await _heard(watch)
        async with asyncio.timeout(PATIENCE):
            while not changes.listening:
                await watch.changed()  # False every poll_seconds while the listener reconnects
        await _already_heard(watch)  # the reconnection's own wake-up, taken so the next one is the change's
        after = await _listener_pids(migrated_database_url)
        assert after and not set(after) & set(before)
        await _change(uow_factory, job_id, _claim)
        assert await _heard(watch)


async def test_without_a_database_it_starts_and_readers_poll(database_url: str) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/test"
    listener = await PostgresJobChanges.open(unreachable, connect_timeout=1.0, poll_seconds=0.05)
    try:
        assert not listener.listening
        async with listener.watch("any") as watch:
            assert await _heard(watch) is False  # "look anyway", after poll_seconds
    finally:
        await listener.close()
