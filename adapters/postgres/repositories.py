"""Repositories over one AsyncConnection (SQLAlchemy Core): rows <-> domain entities (see mapping.py). They
never commit.

Inserts use ``ON CONFLICT DO NOTHING`` and report a clash as ``Conflict``: a unique violation would abort
the whole transaction, while this leaves the unit of work usable for the caller's next step. A reference
to a missing row (foreign key) is reported as ``NotFound``, as the in-memory adapter does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres import mapping
from adapters.postgres.tables import clips, feedback, jobs, model_versions, training_runs, videos
from domain.errors import Conflict, NotFound
from domain.jobs import (
    Feedback,
    Job,
    JobStatus,
    ModelStatus,
    ModelVersion,
    RatedSpan,
    StoredClip,
    TrainingRun,
    TrainingStatus,
    Video,
    source_stem,
)
from domain.paging import decode_cursor, encode_cursor
from domain.ports import JobCounts, JobPage

# Any constant: serialises model activations so two promotions cannot both pass the one-active check.
_ACTIVATION_LOCK_ID = 0x0F05AC71


_FOREIGN_KEY_VIOLATION = "23503"
_ACTIVE = model_versions.c.status == ModelStatus.ACTIVE.value


@contextlib.contextmanager
def _references(what: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise NotFound(f"{what} refers to a row that does not exist") from error
        raise


async def _insert(connection: AsyncConnection, table: sa.Table, values: Mapping[str, Any], what: str) -> None:
    statement = upsert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    with _references(what):
        inserted = (await connection.execute(statement)).first()
    if inserted is None:
        raise Conflict(f"{what} conflicts with an existing one")


async def _update(connection: AsyncConnection, table: sa.Table, values: Mapping[str, Any], what: str) -> None:
    statement = sa.update(table).where(table.c.id == values["id"]).values(**values).returning(table.c.id)
    with _references(f"{what} {values['id']}"):
        updated = (await connection.execute(statement)).first()
    if updated is None:
        raise NotFound(f"{what} {values['id']} does not exist")


async def _one(connection: AsyncConnection, statement: sa.Select[Any]) -> sa.Row[Any] | None:
    return (await connection.execute(statement)).first()


async def _all(connection: AsyncConnection, statement: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
    return (await connection.execute(statement)).all()


# The API's busiest reads, built once: building a statement and its cache key on every call costs more
# than sending it (about 0.2 ms of a 2 ms request, measured under load).
_JOB = sa.select(jobs).where(jobs.c.id == sa.bindparam("id"))
_JOB_FOR_UPDATE = _JOB.with_for_update()
_CLIP = sa.select(clips).where(clips.c.id == sa.bindparam("id"))
_CLIPS_OF_JOB = (
    sa.select(clips).where(clips.c.job_id == sa.bindparam("job_id")).order_by(clips.c.rank, clips.c.id)
)


class PostgresVideoRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, video: Video) -> None:
        await _insert(self._connection, videos, mapping.VIDEOS.values(video), f"video {video.id}")

    async def get(self, video_id: str) -> Video | None:
        row = await _one(self._connection, sa.select(videos).where(videos.c.id == video_id))
        return None if row is None else mapping.VIDEOS.entity_of(row)

    async def by_sha256(self, sha256: str) -> Video | None:
        query = sa.select(videos).where(videos.c.sha256 == sha256).order_by(videos.c.created_at, videos.c.id)
        row = await _one(self._connection, query.limit(1))
        return None if row is None else mapping.VIDEOS.entity_of(row)

    async def named(self) -> Sequence[tuple[str, Video]]:
        query = (
            sa.select(videos, jobs.c.source.label("job_source"), jobs.c.source_name.label("job_source_name"))
            .join(jobs, jobs.c.video_id == videos.c.id)
            .order_by(videos.c.created_at, videos.c.id)
        )
        found: dict[tuple[str, str], Video] = {}
        for row in await _all(self._connection, query):
            stem = source_stem(row.job_source, row.job_source_name)
            if stem is not None:
                found.setdefault((stem, row.id), mapping.VIDEOS.entity_of(row))
        return [(stem, video) for (stem, _), video in found.items()]


class PostgresJobRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, job: Job) -> None:
        await _insert(self._connection, jobs, mapping.JOBS.values(job), f"job {job.id}")

    async def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        query = _JOB_FOR_UPDATE if for_update else _JOB
        row = (await self._connection.execute(query, {"id": job_id})).first()
        return None if row is None else mapping.JOBS.entity_of(row)

    async def update(self, job: Job) -> None:
        await _update(self._connection, jobs, mapping.JOBS.values(job), "job")

    async def update_fenced(self, job: Job, token: str) -> bool:
        # The fence: the row changes only while it still carries the token this attempt was given.
        statement = (
            sa.update(jobs)
            .where(jobs.c.id == job.id, jobs.c.lease_token == token)
            .values(**mapping.JOBS.values(job))
            .returning(jobs.c.id)
        )
        with _references(f"job {job.id}"):
            return (await self._connection.execute(statement)).first() is not None

    async def by_idempotency_key(self, owner: str, key: str) -> Job | None:
        query = sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
        row = await _one(self._connection, query)
        return None if row is None else mapping.JOBS.entity_of(row)

    async def page_for_owner(self, owner: str, limit: int, cursor: str | None = None) -> JobPage:
        query = sa.select(jobs).where(jobs.c.owner == owner)
        if cursor:
            created_at, job_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(jobs.c.created_at, jobs.c.id) < sa.tuple_(created_at, job_id))
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        found = [mapping.JOBS.entity_of(row) for row in await _all(self._connection, query)]
        page, more = found[:limit], len(found) > limit
        last = page[-1] if page else None
        return JobPage(tuple(page), encode_cursor(last.created_at, last.id) if more and last else None)

    async def needing_recovery(self, now: datetime, queued_before: datetime, limit: int) -> Sequence[Job]:
        running = sa.and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at <= now)
        waiting = sa.and_(jobs.c.status == JobStatus.QUEUED.value, jobs.c.updated_at < queued_before)
        query = (
            sa.select(jobs)
            .where(sa.or_(running, waiting))
            .order_by(jobs.c.updated_at, jobs.c.id)
            .limit(limit)
            # Another sweeper's rows are skipped rather than waited for.
            .with_for_update(skip_locked=True)
        )
        return [mapping.JOBS.entity_of(row) for row in await _all(self._connection, query)]

    async def unfinished_sources(self, sources: Sequence[str]) -> set[str]:
        unfinished = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
        query = (
            sa.select(jobs.c.source)
            .where(jobs.c.status.in_(unfinished), jobs.c.source.in_(list(sources)))
            .distinct()
        )
        return {row.source for row in await _all(self._connection, query)}

    async def counts(self, now: datetime) -> JobCounts:
        statement = sa.select(jobs.c.status, sa.func.count().label("n")).group_by(jobs.c.status)
        by_status = dict.fromkeys(JobStatus, 0)
        for row in await _all(self._connection, statement):
            by_status[JobStatus(row.status)] = int(row.n)
        oldest = (
            await self._connection.execute(
                sa.select(sa.func.min(jobs.c.created_at)).where(jobs.c.status == JobStatus.QUEUED.value)
            )
        ).scalar_one_or_none()
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return JobCounts(by_status, age)


class PostgresClipRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_many(self, stored: Sequence[StoredClip]) -> None:
        if stored:
            with _references(f"clips of job {stored[0].job_id}"):
                await self._connection.execute(
                    sa.insert(clips), [mapping.CLIPS.values(clip) for clip in stored]
                )

    async def get(self, clip_id: str) -> StoredClip | None:
        row = (await self._connection.execute(_CLIP, {"id": clip_id})).first()
        return None if row is None else mapping.CLIPS.entity_of(row)

    async def for_job(self, job_id: str) -> Sequence[StoredClip]:
        rows = (await self._connection.execute(_CLIPS_OF_JOB, {"job_id": job_id})).all()
        return [mapping.CLIPS.entity_of(row) for row in rows]


class PostgresFeedbackRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, item: Feedback) -> None:
        await _insert(self._connection, feedback, mapping.FEEDBACK.values(item), f"feedback {item.id}")

    async def upsert(self, item: Feedback) -> Feedback:
        values = mapping.FEEDBACK.values(item)
        statement = (
            upsert(feedback)
            .values(**values)
            .on_conflict_do_update(
                constraint="uq_feedback_clip_id_rater",
                set_={"rating": values["rating"], "created_at": values["created_at"]},
            )
            .returning(*feedback.c)
        )
        with _references(f"feedback on clip {item.clip_id}"):
            row = (await self._connection.execute(statement)).one()
        return mapping.FEEDBACK.entity_of(row)

    async def for_clip(self, clip_id: str) -> Sequence[Feedback]:
        query = (
            sa.select(feedback)
            .where(feedback.c.clip_id == clip_id)
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        return [mapping.FEEDBACK.entity_of(row) for row in await _all(self._connection, query)]

    async def rated_spans(self) -> Sequence[RatedSpan]:
        query = (
            sa.select(
                clips.c.video_id,
                videos.c.sha256,
                clips.c.start_seconds,
                clips.c.end_seconds,
                sa.func.avg(feedback.c.rating).label("rating"),
                sa.func.count().label("ratings"),
            )
            .select_from(feedback.join(clips, clips.c.id == feedback.c.clip_id))
            .join(videos, videos.c.id == clips.c.video_id)
            .group_by(clips.c.id, clips.c.video_id, videos.c.sha256, videos.c.created_at)
            .order_by(videos.c.created_at, clips.c.video_id, clips.c.start_seconds, clips.c.id)
        )
        return [
            RatedSpan(
                row.video_id, row.sha256, row.start_seconds, row.end_seconds, float(row.rating), row.ratings
            )
            for row in await _all(self._connection, query)
        ]

    async def ratings_by(self, user: str, clip_ids: Sequence[str]) -> dict[str, int]:
        if not clip_ids:
            return {}
        query = sa.select(feedback.c.clip_id, feedback.c.rating).where(
            feedback.c.rater == user, feedback.c.clip_id.in_(list(clip_ids))
        )
        return {row.clip_id: int(row.rating) for row in await _all(self._connection, query)}

    async def count_since(self, since: datetime | None) -> int:
        query = sa.select(sa.func.count()).select_from(feedback)
        if since is not None:
            query = query.where(feedback.c.created_at > since)
        return int((await self._connection.execute(query)).scalar_one())


class PostgresModelVersionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, version: ModelVersion) -> None:
        await _insert(
            self._connection,
            model_versions,
            mapping.MODELS.values(version),
            f"model version {version.version}",
        )

    async def get(self, version_id: str) -> ModelVersion | None:
        row = await _one(self._connection, sa.select(model_versions).where(model_versions.c.id == version_id))
        return None if row is None else mapping.MODELS.entity_of(row)

    async def active(self) -> ModelVersion | None:
        row = await _one(self._connection, sa.select(model_versions).where(_ACTIVE))
        return None if row is None else mapping.MODELS.entity_of(row)

    async def activate(self, version_id: str) -> ModelVersion:
        connection, table = self._connection, model_versions
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_ACTIVATION_LOCK_ID)))
        if await _one(connection, sa.select(table.c.id).where(table.c.id == version_id)) is None:
            raise NotFound(f"model version {version_id} does not exist")
        # Retire first: the partial unique index rejects two active rows even within one statement.
        await connection.execute(
            sa.update(table).where(_ACTIVE, table.c.id != version_id).values(status=ModelStatus.RETIRED.value)
        )
        row = (
            await connection.execute(
                sa.update(table)
                .where(table.c.id == version_id)
                .values(status=ModelStatus.ACTIVE.value)
                .returning(*table.c)
            )
        ).one()
        return mapping.MODELS.entity_of(row)

    async def list(self) -> Sequence[ModelVersion]:
        query = sa.select(model_versions).order_by(
            model_versions.c.created_at.desc(), model_versions.c.id.desc()
        )
        return [mapping.MODELS.entity_of(row) for row in await _all(self._connection, query)]


class PostgresTrainingRunRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, run: TrainingRun) -> None:
        await _insert(self._connection, training_runs, mapping.RUNS.values(run), f"training run {run.id}")

    async def get(self, run_id: str) -> TrainingRun | None:
        row = await _one(self._connection, sa.select(training_runs).where(training_runs.c.id == run_id))
        return None if row is None else mapping.RUNS.entity_of(row)

    async def update(self, run: TrainingRun) -> None:
        await _update(self._connection, training_runs, mapping.RUNS.values(run), "training run")

    async def last_succeeded(self) -> TrainingRun | None:
        query = (
            sa.select(training_runs)
            .where(training_runs.c.status == TrainingStatus.SUCCEEDED.value)
            .order_by(training_runs.c.created_at.desc(), training_runs.c.id.desc())
            .limit(1)
        )
        row = await _one(self._connection, query)
        return None if row is None else mapping.RUNS.entity_of(row)

    async def last_unfinished(self) -> TrainingRun | None:
        query = (
            sa.select(training_runs)
            .where(training_runs.c.status.in_([TrainingStatus.RUNNING.value, TrainingStatus.FAILED.value]))
            .order_by(training_runs.c.created_at.desc(), training_runs.c.id.desc())
            .limit(1)
        )
        row = await _one(self._connection, query)
        return None if row is None else mapping.RUNS.entity_of(row)
