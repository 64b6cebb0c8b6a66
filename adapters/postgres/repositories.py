"""Repositories over one AsyncSession: rows <-> domain entities (see mapping.py). They never commit.

Inserts use ``ON CONFLICT DO NOTHING`` and report a clash as ``Conflict``: a unique violation would abort
the whole transaction, while this leaves the unit of work usable for the caller's next step. A reference
to a missing row (foreign key) is reported as ``NotFound``, as the in-memory adapter does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres import mapping
from adapters.postgres.tables import clips, feedback, jobs, model_versions, training_runs, videos
from domain.errors import Conflict, NotFound
from domain.jobs import Feedback, Job, ModelVersion, StoredClip, TrainingRun, Video

# Any constant: serialises model activations so two promotions cannot both pass the one-active check.
_ACTIVATION_LOCK_ID = 0x0F05AC71


_FOREIGN_KEY_VIOLATION = "23503"


@contextlib.contextmanager
def _references(what: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise NotFound(f"{what} refers to a row that does not exist") from error
        raise


async def _insert(session: AsyncSession, table: sa.Table, values: Mapping[str, Any], what: str) -> None:
    statement = upsert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    with _references(what):
        inserted = (await session.execute(statement)).first()
    if inserted is None:
        raise Conflict(f"{what} conflicts with an existing one")


async def _update(session: AsyncSession, table: sa.Table, values: Mapping[str, Any], what: str) -> None:
    statement = sa.update(table).where(table.c.id == values["id"]).values(**values).returning(table.c.id)
    with _references(f"{what} {values['id']}"):
        updated = (await session.execute(statement)).first()
    if updated is None:
        raise NotFound(f"{what} {values['id']} does not exist")


async def _one(session: AsyncSession, statement: sa.Select[Any]) -> sa.Row[Any] | None:
    return (await session.execute(statement)).first()


async def _all(session: AsyncSession, statement: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
    return (await session.execute(statement)).all()


class PostgresVideoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, video: Video) -> None:
        await _insert(self._session, videos, mapping.VIDEOS.values(video), f"video {video.id}")

    async def get(self, video_id: str) -> Video | None:
        row = await _one(self._session, sa.select(videos).where(videos.c.id == video_id))
        return None if row is None else mapping.VIDEOS.entity_of(row)

    async def by_sha256(self, sha256: str) -> Video | None:
        query = sa.select(videos).where(videos.c.sha256 == sha256).order_by(videos.c.created_at, videos.c.id)
        row = await _one(self._session, query.limit(1))
        return None if row is None else mapping.VIDEOS.entity_of(row)


class PostgresJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, job: Job) -> None:
        await _insert(self._session, jobs, mapping.JOBS.values(job), f"job {job.id}")

    async def get(self, job_id: str) -> Job | None:
        row = await _one(self._session, sa.select(jobs).where(jobs.c.id == job_id))
        return None if row is None else mapping.JOBS.entity_of(row)

    async def update(self, job: Job) -> None:
        await _update(self._session, jobs, mapping.JOBS.values(job), "job")

    async def list_for_owner(self, owner: str, limit: int = 50, offset: int = 0) -> Sequence[Job]:
        query = (
            sa.select(jobs)
            .where(jobs.c.owner == owner)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [mapping.JOBS.entity_of(row) for row in await _all(self._session, query)]


class PostgresClipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, stored: Sequence[StoredClip]) -> None:
        if stored:
            with _references(f"clips of job {stored[0].job_id}"):
                await self._session.execute(sa.insert(clips), [mapping.CLIPS.values(clip) for clip in stored])

    async def get(self, clip_id: str) -> StoredClip | None:
        row = await _one(self._session, sa.select(clips).where(clips.c.id == clip_id))
        return None if row is None else mapping.CLIPS.entity_of(row)

    async def for_job(self, job_id: str) -> Sequence[StoredClip]:
        query = sa.select(clips).where(clips.c.job_id == job_id).order_by(clips.c.rank, clips.c.id)
        return [mapping.CLIPS.entity_of(row) for row in await _all(self._session, query)]


class PostgresFeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, item: Feedback) -> None:
        await _insert(self._session, feedback, mapping.FEEDBACK.values(item), f"feedback {item.id}")

    async def for_clip(self, clip_id: str) -> Sequence[Feedback]:
        query = (
            sa.select(feedback)
            .where(feedback.c.clip_id == clip_id)
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        return [mapping.FEEDBACK.entity_of(row) for row in await _all(self._session, query)]


class PostgresModelVersionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, version: ModelVersion) -> None:
        await _insert(
            self._session, model_versions, mapping.MODELS.values(version), f"model version {version.version}"
        )

    async def get(self, version_id: str) -> ModelVersion | None:
        row = await _one(self._session, sa.select(model_versions).where(model_versions.c.id == version_id))
        return None if row is None else mapping.MODELS.entity_of(row)

    async def active(self) -> ModelVersion | None:
        row = await _one(self._session, sa.select(model_versions).where(model_versions.c.active))
        return None if row is None else mapping.MODELS.entity_of(row)

    async def activate(self, version_id: str) -> None:
        session, table = self._session, model_versions
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_ACTIVATION_LOCK_ID)))
        if await _one(session, sa.select(table.c.id).where(table.c.id == version_id)) is None:
            raise NotFound(f"model version {version_id} does not exist")
        # Deactivate first: the partial unique index rejects two active rows even within one statement.
        await session.execute(
            sa.update(table).where(table.c.active, table.c.id != version_id).values(active=False)
        )
        await session.execute(sa.update(table).where(table.c.id == version_id).values(active=True))

    async def list(self) -> Sequence[ModelVersion]:
        query = sa.select(model_versions).order_by(
            model_versions.c.created_at.desc(), model_versions.c.id.desc()
        )
        return [mapping.MODELS.entity_of(row) for row in await _all(self._session, query)]


class PostgresTrainingRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, run: TrainingRun) -> None:
        await _insert(self._session, training_runs, mapping.RUNS.values(run), f"training run {run.id}")

    async def get(self, run_id: str) -> TrainingRun | None:
        row = await _one(self._session, sa.select(training_runs).where(training_runs.c.id == run_id))
        return None if row is None else mapping.RUNS.entity_of(row)

    async def update(self, run: TrainingRun) -> None:
        await _update(self._session, training_runs, mapping.RUNS.values(run), "training run")
