"""The Postgres unit of work: one pooled connection and one transaction per ``async with`` block."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import TracebackType
from typing import Self

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.repositories import (
    PostgresClipRepository,
    PostgresFeedbackRepository,
    PostgresJobRepository,
    PostgresModelVersionRepository,
    PostgresTrainingRunRepository,
    PostgresVideoRepository,
)
from adapters.queue.procrastinate_queue import ProcrastinateJobQueue
from domain.errors import DependencyUnavailable
from domain.ports import (
    ClipRepository,
    FeedbackRepository,
    JobQueue,
    JobRepository,
    ModelVersionRepository,
    TrainingRunRepository,
    VideoRepository,
)


@attrs.define
class PostgresUnitOfWork:
    """``async with uow:`` takes a connection from the pool; leaving the block rolls back whatever was not
    committed. Core statements on a connection, no ORM session: the repositories map rows themselves, and
    the busiest routes should not pay for an identity map they never use."""

    engine: AsyncEngine
    read_only: bool = False
    gate: Gate | None = None
    videos: VideoRepository = attrs.field(init=False)
    jobs: JobRepository = attrs.field(init=False)
    clips: ClipRepository = attrs.field(init=False)
    feedback: FeedbackRepository = attrs.field(init=False)
    models: ModelVersionRepository = attrs.field(init=False)
    training_runs: TrainingRunRepository = attrs.field(init=False)
    queue: JobQueue = attrs.field(init=False)
    _connection: AsyncConnection | None = attrs.field(init=False, default=None)

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already open; take a fresh one from the factory")
        if self.gate is not None:
            await self.gate.enter()
        try:
            connection = self._connection = await self.engine.connect()
        except BaseException as error:
            if self.gate is not None:
                self.gate.leave()
            if isinstance(error, DBAPIError | PoolTimeout):
                why = "busy: no connection free in time" if isinstance(error, PoolTimeout) else "unreachable"
                raise DependencyUnavailable(f"PostgreSQL is {why}; try again") from error
            raise
        self.videos = PostgresVideoRepository(connection)
        self.jobs = PostgresJobRepository(connection)
        self.clips = PostgresClipRepository(connection)
        self.feedback = PostgresFeedbackRepository(connection)
        self.models = PostgresModelVersionRepository(connection)
        self.training_runs = PostgresTrainingRunRepository(connection)
        self.queue = ProcrastinateJobQueue(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            # After a commit nothing is left; otherwise this discards the block's uncommitted writes.
            if connection.in_transaction():
                await connection.rollback()
        except DBAPIError:
            if exc is None:
                raise
            # The block already failed (likely on the same dead connection): that error is the one to see.
        finally:
            try:
                await connection.close()
            finally:
                if self.gate is not None:
                    self.gate.leave()
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            # A restart or failover dropped pooled connections; SQLAlchemy has replaced them by now.
            raise DependencyUnavailable("the connection to PostgreSQL was lost; try again") from exc

    async def now(self) -> datetime:
        # clock_timestamp(), not now(): the latter is frozen at the transaction's start.
        stamp: datetime = (await self._open().execute(sa.select(sa.func.clock_timestamp()))).scalar_one()
        return stamp

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self._open().commit()

    async def rollback(self) -> None:
        await self._open().rollback()

    def _open(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._connection


@attrs.define
class Gate:
    """First come, first served for the pool's connections.

    SQLAlchemy's async pool queues waiters on an asyncio.Queue, where a task that arrives as a connection
    comes back can take it ahead of one that has waited, again and again: under load a few requests
    starved for seconds and timed out (a 500) while the pool stayed busy. asyncio.Semaphore serves waiters
    in order, so holding one slot per pooled connection keeps the pool from ever having waiters of its own.
    """

    slots: int
    timeout: float
    _semaphore: asyncio.Semaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._semaphore = asyncio.Semaphore(self.slots)

    async def enter(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise DependencyUnavailable(
                f"PostgreSQL is busy: no connection free within {self.timeout:g} s; try again"
            ) from None

    def leave(self) -> None:
        self._semaphore.release()


@attrs.frozen
class PostgresUnitOfWorkFactory:
    """Hands out a fresh unit of work per use; all of them share the engine's connection pool.

    ``read_engine``, when given, serves read-only units of work: an engine in autocommit mode sends no BEGIN
    and ROLLBACK around their queries, one round trip per query instead of three.
    """

    engine: AsyncEngine
    read_engine: AsyncEngine | None = None
    # One gate per pool, as many slots as the pool has connections (pool size + overflow).
    gate: Gate | None = None
    read_gate: Gate | None = None

    def __call__(self, *, read_only: bool = False) -> PostgresUnitOfWork:
        if read_only and self.read_engine is not None:
            return PostgresUnitOfWork(self.read_engine, read_only=True, gate=self.read_gate)
        return PostgresUnitOfWork(self.engine, read_only=read_only, gate=self.gate)
