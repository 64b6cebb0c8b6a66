"""The Postgres unit of work: one AsyncSession and one transaction per ``async with`` block."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Self

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.repositories import (
    PostgresClipRepository,
    PostgresFeedbackRepository,
    PostgresJobRepository,
    PostgresModelVersionRepository,
    PostgresTrainingRunRepository,
    PostgresVideoRepository,
)
from adapters.queue.procrastinate_queue import ProcrastinateJobQueue
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
    """``async with uow:`` opens a session; leaving the block rolls back whatever was not committed."""

    session_factory: async_sessionmaker[AsyncSession]
    videos: VideoRepository = attrs.field(init=False)
    jobs: JobRepository = attrs.field(init=False)
    clips: ClipRepository = attrs.field(init=False)
    feedback: FeedbackRepository = attrs.field(init=False)
    models: ModelVersionRepository = attrs.field(init=False)
    training_runs: TrainingRunRepository = attrs.field(init=False)
    queue: JobQueue = attrs.field(init=False)
    _session: AsyncSession | None = attrs.field(init=False, default=None)

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; take a fresh one from the factory")
        session = self._session = self.session_factory()
        self.videos = PostgresVideoRepository(session)
        self.jobs = PostgresJobRepository(session)
        self.clips = PostgresClipRepository(session)
        self.feedback = PostgresFeedbackRepository(session)
        self.models = PostgresModelVersionRepository(session)
        self.training_runs = PostgresTrainingRunRepository(session)
        self.queue = ProcrastinateJobQueue(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            # After a commit this is a no-op; otherwise it discards the block's uncommitted writes.
            await session.rollback()
        finally:
            await session.close()

    async def now(self) -> datetime:
        # clock_timestamp(), not now(): the latter is frozen at the transaction's start.
        stamp: datetime = (await self._open().execute(sa.select(sa.func.clock_timestamp()))).scalar_one()
        return stamp

    async def commit(self) -> None:
        await self._open().commit()

    async def rollback(self) -> None:
        await self._open().rollback()

    def _open(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._session


@attrs.frozen
class PostgresUnitOfWorkFactory:
    """Hands out a fresh unit of work per use; all of them share the engine's connection pool."""

    session_factory: async_sessionmaker[AsyncSession]

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.session_factory)
