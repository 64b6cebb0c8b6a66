"""An in-memory unit of work for the CLI and for unit tests, with the same transaction semantics as Postgres.

Writes are staged per unit of work and applied to the shared store on commit; leaving ``async with``
without a commit drops them. Entities are copied in and out, so editing a loaded entity changes nothing
until ``update`` and ``commit``, just as with a database.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import attrs

from adapters.queue.procrastinate_queue import PROCESS_TASK, TRAIN_TASK
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
    utcnow,
)
from domain.paging import decode_cursor, encode_cursor
from domain.ports import (
    ClipRepository,
    FeedbackRepository,
    JobCounts,
    JobPage,
    JobQueue,
    JobRepository,
    ModelVersionRepository,
    TrainingRunRepository,
    VideoRepository,
)

T = TypeVar("T")


@attrs.define
class MemoryStore:
    """Committed state, shared by every unit of work from one factory."""

    videos: dict[str, Video] = attrs.field(factory=dict)
    jobs: dict[str, Job] = attrs.field(factory=dict)
    clips: dict[str, StoredClip] = attrs.field(factory=dict)
    feedback: dict[str, Feedback] = attrs.field(factory=dict)
    models: dict[str, ModelVersion] = attrs.field(factory=dict)
    training_runs: dict[str, TrainingRun] = attrs.field(factory=dict)
    queue: dict[str, QueueEntry] = attrs.field(factory=dict)


@attrs.define
class _Table(Generic[T]):
    """Committed rows overlaid with this unit of work's staged rows."""

    committed: dict[str, T]
    staged: dict[str, T] = attrs.field(factory=dict)

    def get(self, key: str) -> T | None:
        row = self.staged.get(key, self.committed.get(key))
        return copy.deepcopy(row)

    def put(self, key: str, row: T) -> None:
        self.staged[key] = copy.deepcopy(row)

    def __contains__(self, key: str) -> bool:
        return key in self.staged or key in self.committed

    def rows(self) -> Iterator[T]:
        for row in {**self.committed, **self.staged}.values():
            yield copy.deepcopy(row)

    def select(self, where: Callable[[T], bool], order: Callable[[T], Any]) -> list[T]:
        return sorted((row for row in self.rows() if where(row)), key=order)

    def apply(self) -> None:
        self.committed.update(self.staged)
        self.staged.clear()


def _exists(table: _Table[Any], key: str | None, what: str) -> None:
    # Postgres enforces these references with foreign keys; failing the same way keeps unit tests honest.
    if key is not None and key not in table:
        raise NotFound(f"{what} {key} does not exist")


def _new(table: _Table[T], key: str, row: T, what: str) -> None:
    if key in table:
        raise Conflict(f"{what} {key} conflicts with an existing one")
    table.put(key, row)


class MemoryVideoRepository:
    def __init__(self, table: _Table[Video], jobs: _Table[Job]) -> None:
        self._table = table
        self._jobs = jobs

    async def add(self, video: Video) -> None:
        _new(self._table, video.id, video, "video")

    async def get(self, video_id: str) -> Video | None:
        return self._table.get(video_id)

    async def by_sha256(self, sha256: str) -> Video | None:
        found = self._table.select(lambda v: v.sha256 == sha256, lambda v: (v.created_at, v.id))
        return found[0] if found else None

    async def named(self) -> Sequence[tuple[str, Video]]:
        found: dict[tuple[str, str], Video] = {}
        for video in self._table.select(lambda _: True, lambda v: (v.created_at, v.id)):
            for job in self._jobs.rows():
                stem = source_stem(job.source, job.source_name) if job.video_id == video.id else None
                if stem is not None:
                    found.setdefault((stem, video.id), video)
        return [(stem, video) for (stem, _), video in found.items()]


class MemoryJobRepository:
    def __init__(self, table: _Table[Job], videos: _Table[Video]) -> None:
        self._table = table
        self._videos = videos

    async def add(self, job: Job) -> None:
        _exists(self._videos, job.video_id, "video")
        if job.idempotency_key is not None and any(
            (j.owner, j.idempotency_key) == (job.owner, job.idempotency_key) for j in self._table.rows()
        ):
            raise Conflict(f"job with idempotency key {job.idempotency_key!r} already exists")
        _new(self._table, job.id, job, "job")

    async def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        return self._table.get(job_id)

    async def update(self, job: Job) -> None:
        if job.id not in self._table:
            raise NotFound(f"job {job.id} does not exist")
        _exists(self._videos, job.video_id, "video")
        self._table.put(job.id, job)

    async def update_fenced(self, job: Job, token: str) -> bool:
        stored = self._table.get(job.id)
        if stored is None or stored.lease_token != token:
            return False
        await self.update(job)
        return True

    async def by_idempotency_key(self, owner: str, key: str) -> Job | None:
        found = self._table.select(lambda j: (j.owner, j.idempotency_key) == (owner, key), lambda j: j.id)
        return found[0] if found else None

    async def page_for_owner(self, owner: str, limit: int, cursor: str | None = None) -> JobPage:
        after = decode_cursor(cursor) if cursor else None
        newest_first = self._table.select(
            lambda j: j.owner == owner and (after is None or (j.created_at, j.id) < after),
            lambda j: (j.created_at, j.id),
        )[::-1]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        last = page[-1] if page else None
        return JobPage(tuple(page), encode_cursor(last.created_at, last.id) if more and last else None)

    async def needing_recovery(self, now: datetime, queued_before: datetime, limit: int) -> Sequence[Job]:
        def stale(job: Job) -> bool:
            if job.status is JobStatus.RUNNING:
                return job.lease_expired(now)
            return job.status is JobStatus.QUEUED and job.updated_at < queued_before

        return self._table.select(stale, lambda j: (j.updated_at, j.id))[:limit]

    async def unfinished_sources(self, sources: Sequence[str]) -> set[str]:
        wanted = set(sources)
        return {job.source for job in self._table.rows() if job.source in wanted and not job.status.finished}

    async def counts(self, now: datetime) -> JobCounts:
        by_status = dict.fromkeys(JobStatus, 0)
        oldest: datetime | None = None
        for job in self._table.rows():
            by_status[job.status] += 1
            if job.status is JobStatus.QUEUED and (oldest is None or job.created_at < oldest):
                oldest = job.created_at
        age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        return JobCounts(by_status, age)


class MemoryClipRepository:
    def __init__(self, table: _Table[StoredClip], jobs: _Table[Job], videos: _Table[Video]) -> None:
        self._table = table
        self._jobs = jobs
        self._videos = videos

    async def add_many(self, clips: Sequence[StoredClip]) -> None:
        for clip in clips:
            _exists(self._jobs, clip.job_id, "job")
            _exists(self._videos, clip.video_id, "video")
            _new(self._table, clip.id, clip, "clip")

    async def get(self, clip_id: str) -> StoredClip | None:
        return self._table.get(clip_id)

    async def for_job(self, job_id: str) -> Sequence[StoredClip]:
        return self._table.select(lambda c: c.job_id == job_id, lambda c: (c.rank, c.id))


class MemoryFeedbackRepository:
    def __init__(self, table: _Table[Feedback], clips: _Table[StoredClip], videos: _Table[Video]) -> None:
        self._table = table
        self._clips = clips
        self._videos = videos

    async def add(self, feedback: Feedback) -> None:
        _exists(self._clips, feedback.clip_id, "clip")
        if any((f.clip_id, f.user) == (feedback.clip_id, feedback.user) for f in self._table.rows()):
            raise Conflict(f"{feedback.user} already rated clip {feedback.clip_id}")
        _new(self._table, feedback.id, feedback, "feedback")

    async def upsert(self, feedback: Feedback) -> Feedback:
        _exists(self._clips, feedback.clip_id, "clip")
        previous = next(
            (f for f in self._table.rows() if (f.clip_id, f.user) == (feedback.clip_id, feedback.user)), None
        )
        stored = feedback if previous is None else attrs.evolve(feedback, id=previous.id)
        self._table.put(stored.id, stored)
        return copy.deepcopy(stored)

    async def for_clip(self, clip_id: str) -> Sequence[Feedback]:
        return self._table.select(lambda f: f.clip_id == clip_id, lambda f: (f.created_at, f.id))

    async def rated_spans(self) -> Sequence[RatedSpan]:
        by_clip: dict[str, list[int]] = {}
        for rating in self._table.rows():
            by_clip.setdefault(rating.clip_id, []).append(rating.rating)
        spans = []
        for clip_id, ratings in by_clip.items():
            clip = self._clips.get(clip_id)
            video = None if clip is None else self._videos.get(clip.video_id)
            if clip is None or video is None:
                continue
            mean = sum(ratings) / len(ratings)
            spans.append((video, RatedSpan(video.id, video.sha256, clip.start, clip.end, mean, len(ratings))))
        spans.sort(key=lambda pair: (pair[0].created_at, pair[0].id, pair[1].start))
        return [span for _, span in spans]

    async def ratings_by(self, user: str, clip_ids: Sequence[str]) -> dict[str, int]:
        wanted = set(clip_ids)
        return {f.clip_id: f.rating for f in self._table.rows() if f.user == user and f.clip_id in wanted}

    async def count_since(self, since: datetime | None) -> int:
        return sum(1 for f in self._table.rows() if since is None or f.created_at > since)


@attrs.define
class QueueEntry:
    """What procrastinate's row holds: the task to run and the id it runs on (a job's or a training run's)."""

    task: str
    target: str
    done: bool = False


class MemoryJobQueue:
    """The CLI runs the job it submits in-process; entries are kept so tests can see what was queued."""

    def __init__(self, table: _Table[QueueEntry]) -> None:
        self._table = table

    async def enqueue(self, job_id: str) -> str:
        ref = str(next(_QUEUE_REFS))
        self._table.put(ref, QueueEntry(PROCESS_TASK, job_id))
        return ref

    async def cancel(self, ref: str) -> None:
        entry = self._table.get(ref)
        if entry is not None and not entry.done:
            entry.done = True
            self._table.put(ref, entry)

    async def live(self, refs: Sequence[str]) -> set[str]:
        return {ref for ref in refs if (entry := self._table.get(ref)) is not None and not entry.done}

    async def depth(self) -> int:
        return sum(1 for entry in self._table.rows() if not entry.done and entry.task == PROCESS_TASK)

    async def enqueue_training(self, run_id: str) -> str:
        ref = str(next(_QUEUE_REFS))
        self._table.put(ref, QueueEntry(TRAIN_TASK, run_id))
        return ref


_QUEUE_REFS = itertools.count(1)


class MemoryModelVersionRepository:
    def __init__(self, table: _Table[ModelVersion]) -> None:
        self._table = table

    async def add(self, version: ModelVersion) -> None:
        if any(v.version == version.version for v in self._table.rows()):
            raise Conflict(f"model version {version.version} already exists")
        if version.active and await self.active() is not None:
            raise Conflict("another model version is already active")
        _new(self._table, version.id, version, "model version")

    async def get(self, version_id: str) -> ModelVersion | None:
        return self._table.get(version_id)

    async def active(self) -> ModelVersion | None:
        return next((v for v in self._table.rows() if v.active), None)

    async def activate(self, version_id: str) -> ModelVersion:
        chosen = self._table.get(version_id)
        if chosen is None:
            raise NotFound(f"model version {version_id} does not exist")
        for version in self._table.rows():
            if version.active and version.id != version_id:
                version.status = ModelStatus.RETIRED
                self._table.put(version.id, version)
        chosen.status = ModelStatus.ACTIVE
        self._table.put(chosen.id, chosen)
        return copy.deepcopy(chosen)

    async def list(self) -> Sequence[ModelVersion]:
        return self._table.select(lambda _: True, lambda v: (v.created_at, v.id))[::-1]


class MemoryTrainingRunRepository:
    def __init__(self, table: _Table[TrainingRun]) -> None:
        self._table = table

    async def add(self, run: TrainingRun) -> None:
        _new(self._table, run.id, run, "training run")

    async def get(self, run_id: str) -> TrainingRun | None:
        return self._table.get(run_id)

    async def update(self, run: TrainingRun) -> None:
        if run.id not in self._table:
            raise NotFound(f"training run {run.id} does not exist")
        self._table.put(run.id, run)

    async def last_succeeded(self) -> TrainingRun | None:
        done = self._table.select(
            lambda r: r.status is TrainingStatus.SUCCEEDED, lambda r: (r.created_at, r.id)
        )
        return done[-1] if done else None

    async def last_unfinished(self) -> TrainingRun | None:
        left = self._table.select(
            lambda r: r.status in (TrainingStatus.RUNNING, TrainingStatus.FAILED),
            lambda r: (r.created_at, r.id),
        )
        return left[-1] if left else None


@attrs.define
class MemoryUnitOfWork:
    """Stages writes; ``commit`` applies them to the shared store, leaving the block drops the rest."""

    store: MemoryStore
    read_only: bool = False
    # Tests of use cases read this to tell "committed" from "rolled back".
    committed: bool = attrs.field(init=False, default=False)
    videos: VideoRepository = attrs.field(init=False)
    jobs: JobRepository = attrs.field(init=False)
    clips: ClipRepository = attrs.field(init=False)
    feedback: FeedbackRepository = attrs.field(init=False)
    models: ModelVersionRepository = attrs.field(init=False)
    training_runs: TrainingRunRepository = attrs.field(init=False)
    queue: JobQueue = attrs.field(init=False)
    _tables: tuple[_Table[Any], ...] = attrs.field(init=False, factory=tuple)

    def __attrs_post_init__(self) -> None:
        self._open()

    def _open(self) -> None:
        store = self.store
        videos, jobs = _Table(store.videos), _Table(store.jobs)
        clips, feedback = _Table(store.clips), _Table(store.feedback)
        models, runs = _Table(store.models), _Table(store.training_runs)
        queue: _Table[QueueEntry] = _Table(store.queue)
        self.videos = MemoryVideoRepository(videos, jobs)
        self.jobs = MemoryJobRepository(jobs, videos)
        self.clips = MemoryClipRepository(clips, jobs, videos)
        self.feedback = MemoryFeedbackRepository(feedback, clips, videos)
        self.models = MemoryModelVersionRepository(models)
        self.training_runs = MemoryTrainingRunRepository(runs)
        self.queue = MemoryJobQueue(queue)
        self._tables = (videos, jobs, clips, feedback, models, runs, queue)

    async def now(self) -> datetime:
        return utcnow()

    async def __aenter__(self) -> Self:
        self.committed = False
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        for table in self._tables:
            table.apply()
        self.committed = True

    async def rollback(self) -> None:
        for table in self._tables:
            table.staged.clear()


@attrs.frozen
class MemoryUnitOfWorkFactory:
    """Every unit of work it makes shares one store, like connections to one database."""

    store: MemoryStore = attrs.field(factory=MemoryStore)

    def __call__(self, *, read_only: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store, read_only=read_only)
