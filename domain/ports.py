"""The hexagon's ports: what the application needs from the outside world, as plain Protocols.

Media ports are synchronous (CPU-bound work that use cases run in worker threads); storage and
cache ports are async (network I/O on the event loop).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import attrs
import numpy as np

from domain.auth import Principal, RateDecision, RouteClass, Scope
from domain.jobs import Feedback, Job, JobStatus, ModelVersion, RatedSpan, StoredClip, TrainingRun, Video
from domain.media import Analysis, Clip, ClipOptions, MediaInfo, RenderedClip, Transcript
from domain.training import TrainingResult, TrainingSet, TrainingSettings

# (fraction done in [0, 1]) -> None; a stage reports through its own callback.
Progress = Callable[[float], None]


def no_progress(_: float) -> None:
    return None


@attrs.frozen
class FetchedMedia:
    path: Path
    sha256: str
    size_bytes: int
    # True for a download the fetcher made: the job deletes it when done. Never true for a user's own file.
    temporary: bool = False


class MediaFetcher(Protocol):
    """Turns a job's source (a local path for the CLI; an upload id or an http(s) URL for the service) into a
    local file and its sha256. Refuses sources it does not serve with ``SourceRejected``."""

    async def fetch(self, source: str) -> FetchedMedia: ...


class MediaAnalyzer(Protocol):
    """Probes a file against limits and extracts per-second features, shot cuts and speech."""

    version: str

    def probe(self, path: Path) -> MediaInfo:
        """Raise MediaError/MediaLimitExceeded for files that must not be decoded."""
        ...

    def analyze(self, path: Path, info: MediaInfo, progress: Progress = no_progress) -> Analysis: ...


class Transcriber(Protocol):
    """Words with times; an analysis' speech segments guide where audio may be cut into chunks."""

    version: str

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript: ...


class VideoModel(Protocol):
    """Scores each second of an analysed video; higher is more clip-worthy."""

    @property
    def version(self) -> str: ...

    def score(self, analysis: Analysis, transcript: Transcript) -> np.ndarray: ...

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Per-second scores of a stored feature matrix (domain.features), as ``score`` would give."""
        ...

    def using(self, version: str | None) -> VideoModel:
        """This model at a registry version (None: the built-in prior). A version this host cannot load
        falls back to the prior, and the returned model's ``version`` says which one scores."""
        ...


class ClipRenderer(Protocol):
    """Cuts a span into a playable mp4 (reframed to the options' aspect) plus caption files."""

    version: str

    def render(
        self,
        source: Path,
        info: MediaInfo,
        clip: Clip,
        options: ClipOptions,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> RenderedClip: ...


class UploadStore(Protocol):
    """The files the API stored as uploads (``upload:<id>`` sources)."""

    def older_than(self, cutoff: datetime) -> Sequence[str]:
        """The ids of uploads last written before ``cutoff``."""
        ...

    def remove(self, upload_id: str) -> int:
        """Delete one upload; the bytes freed (0 when it was already gone)."""
        ...


class MediaStore(Protocol):
    """Where rendered files live (a local folder, or a shared volume at scale)."""

    def clip_dir(self, job_id: str) -> Path: ...


class Cache(Protocol):
    """Bytes by key with a time to live. Misses are normal; a broken backend behaves as a miss."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None: ...


class VideoRepository(Protocol):
    async def add(self, video: Video) -> None: ...
    async def get(self, video_id: str) -> Video | None: ...
    async def by_sha256(self, sha256: str) -> Video | None: ...

    async def named(self) -> Sequence[tuple[str, Video]]:
        """Each stored video under the names its jobs gave it: an upload's file name or the last part of
        its URL's path, without the extension (how annotation files such as TVSum's name videos)."""
        ...


@attrs.frozen
class JobPage:
    jobs: tuple[Job, ...]
    next_cursor: str | None  # opaque; None on the last page


@attrs.frozen
class JobCounts:
    by_status: dict[JobStatus, int]
    oldest_queued_seconds: float  # 0 when nothing waits


class JobRepository(Protocol):
    async def add(self, job: Job) -> None: ...
    async def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        """``for_update`` locks the row until the unit of work ends (claims and cancellations)."""
        ...

    async def update(self, job: Job) -> None: ...

    async def update_fenced(self, job: Job, token: str) -> bool:
        """Write ``job`` only if the stored row is still held by ``token``; False (0 rows) otherwise."""
        ...

    async def by_idempotency_key(self, owner: str, key: str) -> Job | None: ...

    async def page_for_owner(self, owner: str, limit: int, cursor: str | None = None) -> JobPage:
        """Newest first; ``cursor`` is a previous page's ``next_cursor`` (InvalidInput if malformed)."""
        ...

    async def needing_recovery(self, now: datetime, queued_before: datetime, limit: int) -> Sequence[Job]:
        """Running jobs whose lease ran out, and jobs queued before ``queued_before`` (their queue entry may
        be gone); the sweeper checks each against the queue."""
        ...

    async def counts(self, now: datetime) -> JobCounts: ...

    async def unfinished_sources(self, sources: Sequence[str]) -> set[str]:
        """Which of ``sources`` a queued or running job still reads."""
        ...


class ClipRepository(Protocol):
    async def add_many(self, clips: Sequence[StoredClip]) -> None: ...
    async def get(self, clip_id: str) -> StoredClip | None: ...
    async def for_job(self, job_id: str) -> Sequence[StoredClip]: ...


class FeedbackRepository(Protocol):
    async def add(self, feedback: Feedback) -> None: ...

    async def upsert(self, feedback: Feedback) -> Feedback:
        """One rating per rater and clip: a second one replaces the first (the stored row is returned)."""
        ...

    async def rated_spans(self) -> Sequence[RatedSpan]:
        """Every rated clip's span, with its video and the mean of its ratings, oldest video first."""
        ...

    async def ratings_by(self, user: str, clip_ids: Sequence[str]) -> dict[str, int]:
        """The ratings ``user`` gave to these clips, by clip id (clips not rated by them are absent)."""
        ...

    async def count_since(self, since: datetime | None) -> int:
        """Ratings given (or changed) after ``since``; all of them for None."""
        ...

    async def for_clip(self, clip_id: str) -> Sequence[Feedback]: ...


class ModelVersionRepository(Protocol):
    async def add(self, version: ModelVersion) -> None: ...
    async def get(self, version_id: str) -> ModelVersion | None: ...
    async def active(self) -> ModelVersion | None: ...

    async def activate(self, version_id: str) -> ModelVersion:
        """Make this version the active one and retire the one before it, atomically."""
        ...

    async def list(self) -> Sequence[ModelVersion]: ...


class TrainingRunRepository(Protocol):
    async def add(self, run: TrainingRun) -> None: ...
    async def get(self, run_id: str) -> TrainingRun | None: ...
    async def update(self, run: TrainingRun) -> None: ...

    async def last_succeeded(self) -> TrainingRun | None:
        """The newest run that finished with a trained version."""
        ...

    async def last_unfinished(self) -> TrainingRun | None:
        """The newest run that failed or never finished (its process died): what ``--resume`` takes over."""
        ...


class JobQueue(Protocol):
    """The work queue, inside a unit of work: an entry is committed (or rolled back) with the job row, so
    there is never a job without work or work without a job."""

    async def enqueue(self, job_id: str) -> str:
        """Queue work for ``job_id`` now; returns the entry's reference (kept on the job). A retry's delay
        is the queue's own business (the worker hands it over with the failed attempt)."""
        ...

    async def cancel(self, ref: str) -> None:
        """Drop a waiting entry (a running one is stopped through the job row)."""
        ...

    async def live(self, refs: Sequence[str]) -> set[str]:
        """Which of ``refs`` are still waiting or being worked on."""
        ...

    async def depth(self) -> int:
        """Entries waiting for a worker."""
        ...

    async def enqueue_training(self, run_id: str) -> str:
        """Queue a training run for a worker (committed with the run's row); returns the entry's reference."""
        ...


class JobWatch(Protocol):
    """One reader's ear on one job (see ``JobChanges``)."""

    async def changed(self) -> bool:
        """Wait until the job's status, stage or progress changes (a change since the watch began or since the
        last call counts): True. False, sooner, when the store cannot tell right now: look anyway. Callers
        bound the wait with ``asyncio.timeout``."""
        ...


class JobChanges(Protocol):
    """Hears committed changes of a job's status, stage or progress, as they are committed, so that a reader
    following a job wakes at once instead of polling. Open the watch before reading the job, so that no
    change between the read and the wait goes unheard."""

    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobWatch]: ...


class UnitOfWork(Protocol):
    """One transaction: ``async with uow:`` rolls back unless ``await uow.commit()`` was called."""

    videos: VideoRepository
    jobs: JobRepository
    clips: ClipRepository
    feedback: FeedbackRepository
    models: ModelVersionRepository
    training_runs: TrainingRunRepository
    queue: JobQueue

    async def now(self) -> datetime:
        """The store's clock: leases are compared on one clock, whichever machine a worker runs on."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A fresh unit of work. ``read_only`` ones cannot commit; a store may serve them without opening a
        transaction (one round trip per query, which the busiest read routes want)."""
        ...


class DependencyProbe(Protocol):
    """A health check of one external dependency: returns normally when healthy, raises otherwise."""

    name: str
    required: bool

    async def check(self) -> None: ...


class TokenAuthority(Protocol):
    """Issues and verifies bearer tokens."""

    def issue(self, subject: str, scopes: frozenset[Scope], ttl_seconds: int | None = None) -> str: ...

    def verify(self, token: str) -> Principal:
        """The token's principal; ``Unauthenticated`` for anything that does not verify."""
        ...


class RateLimiter(Protocol):
    """Moving-window request budgets per user and route class."""

    async def hit(self, subject: str, route_class: RouteClass) -> RateDecision:
        """Counts one request. Raises ``DependencyUnavailable`` when the decision cannot be made in time
        (the caller chooses whether that admits or refuses the request)."""
        ...


class Trainer(Protocol):
    """Trains a new model version on a training set's train videos, judged on its validation videos.

    Writes ``<version>.safetensors`` and ``<version>.json`` (the MODEL_CACHE_DIR layout), a checkpoint
    every epoch and, with ``resume``, continues from the checkpoint in ``out_dir``. Under a multi-process
    launcher every process calls ``train``; only the result with ``primary`` set may be recorded.
    Raises ``InvalidOptions`` for settings this machine cannot honour (fp16 without CUDA)."""

    def train(
        self,
        training: TrainingSet,
        settings: TrainingSettings,
        out_dir: Path,
        progress: Progress = no_progress,
        resume: bool = False,
    ) -> TrainingResult: ...
