"""Entities with identity: videos, jobs, stored clips, feedback, model versions and training runs."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from domain.errors import IllegalTransition, LeaseHeld, LeaseLost

# A job's source that names a file the API stored: ``upload:<32 hex>``. Anything else is an http(s) URL (or,
# for the CLI alone, a local path).
UPLOAD_PREFIX = "upload:"


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@attrs.define
class Video:
    id: str
    sha256: str
    source: str
    duration: float
    width: int
    height: int
    fps: float
    has_audio: bool
    size_bytes: int
    created_at: datetime = attrs.field(factory=utcnow)


@attrs.define
class Job:
    """A request for clips and its life: queued → running → succeeded | failed | cancelled.

    A running job is held by one attempt at a time, named by ``lease_token``; the attempt keeps its lease
    alive while it works. Running goes back to queued when the attempt asks for a retry, hands the job back
    on shutdown, or loses its lease (its worker died or stalled). State changes only through the methods
    below, which refuse moves the current state does not allow; storage then writes the change only while
    the attempt still holds the token it started with (fencing), so a late attempt changes nothing.
    """

    id: str
    owner: str
    source: str
    options: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    stage: str = "queued"
    progress: float = 0.0
    error_code: str | None = None
    error: str | None = None
    video_id: str | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime = attrs.field(factory=utcnow)
    updated_at: datetime = attrs.field(factory=utcnow)
    # What the submitter called the source (an upload's file name): shown, never used as a path.
    source_name: str | None = None
    # Fingerprint of the request behind ``idempotency_key``: the same key with another body is a conflict.
    request_fingerprint: str | None = None
    queue_ref: str | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Timings, cache hits and the model version of the attempt that finished the job.
    details: dict[str, Any] = attrs.field(factory=dict)

    def claim(self, token: str, owner: str, now: datetime, lease: timedelta) -> None:
        """Start an attempt: a queued job, or a running one whose lease ran out (its worker is gone)."""
        if self.status is JobStatus.RUNNING and not self.lease_expired(now):
            assert self.lease_expires_at is not None  # an unexpired lease has an end
            left = (self.lease_expires_at - now).total_seconds()
            raise LeaseHeld(f"job {self.id} is running under another attempt's lease", left)
        if self.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            raise IllegalTransition(f"job {self.id} is {self.status.value}: it does not run again")
        self.status, self.stage, self.progress = JobStatus.RUNNING, "starting", 0.0
        self.attempts += 1
        self.lease_token, self.lease_owner = token, owner
        self.lease_expires_at = now + lease
        self.started_at = self.started_at or now
        self.updated_at = now

    def lease_expired(self, now: datetime) -> bool:
        return self.lease_expires_at is None or self.lease_expires_at <= now

    def report(self, token: str, stage: str, progress: float, now: datetime, lease: timedelta) -> None:
        """Record progress; it also renews the attempt's lease."""
        self._require_holder(token)
        self.stage, self.progress = stage, min(1.0, max(0.0, progress))
        self.lease_expires_at = now + lease
        self.updated_at = now

    def succeed(self, token: str, video_id: str, details: dict[str, Any], now: datetime) -> None:
        self._require_holder(token)
        self._finish(JobStatus.SUCCEEDED, now)
        self.stage, self.progress, self.video_id, self.details = "done", 1.0, video_id, details
        self.error_code = self.error = None

    def fail(self, token: str, code: str, message: str, now: datetime) -> None:
        self._require_holder(token)
        self._finish(JobStatus.FAILED, now)
        self.error_code, self.error = code, message

    def retry(self, token: str, code: str, message: str, now: datetime) -> None:
        """Back to the queue after a failure another attempt may not repeat; the error stays visible."""
        self._require_holder(token)
        self._requeue(now)
        self.error_code, self.error = code, message

    def release(self, token: str, now: datetime) -> None:
        """Hand the job back unfinished (its worker is shutting down); the attempt does not count."""
        self._require_holder(token)
        self._requeue(now)
        self.attempts = max(0, self.attempts - 1)

    def recover(self, now: datetime) -> None:
        """A running job whose lease ran out goes back to the queue (or ends, if it was being cancelled)."""
        if self.status is not JobStatus.RUNNING or not self.lease_expired(now):
            raise IllegalTransition(f"job {self.id} is not a running job with an expired lease")
        if self.cancel_requested:
            self._finish(JobStatus.CANCELLED, now)
        else:
            self._requeue(now)

    def cancel(self, now: datetime) -> bool:
        """A queued job ends now (True); a running one stops at its next stage boundary (False)."""
        if self.status is JobStatus.QUEUED:
            self._finish(JobStatus.CANCELLED, now)
            return True
        if self.status is JobStatus.RUNNING:
            self.cancel_requested, self.updated_at = True, now
            return False
        raise IllegalTransition(f"job {self.id} is {self.status.value}: there is nothing to cancel")

    def acknowledge_cancel(self, token: str, now: datetime) -> None:
        self._require_holder(token)
        if not self.cancel_requested:
            raise IllegalTransition(f"job {self.id} was not asked to stop")
        self._finish(JobStatus.CANCELLED, now)

    def _require_holder(self, token: str) -> None:
        if self.status is not JobStatus.RUNNING:
            raise IllegalTransition(f"job {self.id} is {self.status.value}, not running")
        if self.lease_token != token:
            raise LeaseLost(f"job {self.id} is held by another attempt")

    def _requeue(self, now: datetime) -> None:
        self.status, self.stage, self.progress = JobStatus.QUEUED, "queued", 0.0
        self.lease_token = self.lease_owner = self.lease_expires_at = None
        self.updated_at = now

    def _finish(self, status: JobStatus, now: datetime) -> None:
        self.status, self.stage = status, status.value
        self.lease_token = self.lease_owner = self.lease_expires_at = None
        self.finished_at = self.updated_at = now


@attrs.define
class StoredClip:
    id: str
    job_id: str
    video_id: str
    rank: int
    start: float
    end: float
    score: float
    title: str
    transcript: str
    media_path: str
    captions: dict[str, str] = attrs.field(factory=dict)
    model_version: str = ""
    created_at: datetime = attrs.field(factory=utcnow)


@attrs.define
class Feedback:
    id: str
    clip_id: str
    user: str
    rating: int
    created_at: datetime = attrs.field(factory=utcnow)


def source_stem(source: str, source_name: str | None) -> str | None:
    """The name a job's video goes by: its upload's file name, else its URL's last path part, without the
    extension (``talks/AwmHb44_ouw.mp4?x=1`` → ``AwmHb44_ouw``)."""
    name = source_name
    if not name and not source.startswith(UPLOAD_PREFIX):
        name = source.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not name:
        return None
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return stem or None


@attrs.frozen
class RatedSpan:
    """A clip's span of a video with the ratings it received: training labels its seconds by them."""

    video_id: str
    sha256: str
    start: float
    end: float
    rating: float  # the mean of its ratings, each -1 or 1
    ratings: int


# The untrained model: HighlightNet's interpretable prior, always available, served until a version is active.
PRIOR_MODEL_VERSION = "prior-v1"


class ModelStatus(enum.StrEnum):
    CANDIDATE = "candidate"  # trained and measured, never served
    ACTIVE = "active"  # the one version the service scores with (at most one)
    RETIRED = "retired"  # was active once; can be activated again (a rollback)


@attrs.define
class ModelVersion:
    """A trained HighlightNet in the registry: its weights and card under MODEL_CACHE_DIR, its metrics on
    the held-out split of the run that made it, and what it was trained on."""

    id: str
    version: str
    artifact_path: str
    metrics: dict[str, float] = attrs.field(factory=dict)
    card: dict[str, Any] = attrs.field(factory=dict)
    status: ModelStatus = ModelStatus.CANDIDATE
    dataset: dict[str, Any] = attrs.field(factory=dict)  # summary: videos, seconds, ratings, split
    created_at: datetime = attrs.field(factory=utcnow)

    @property
    def active(self) -> bool:
        return self.status is ModelStatus.ACTIVE


def beats(
    candidate: dict[str, float], incumbent: dict[str, float] | None, metric: str, margin: float
) -> bool:
    """Promotion rule: the candidate's held-out ``metric`` exceeds the incumbent's on the same split by more
    than ``margin``. Without an incumbent figure the candidate must beat ``margin`` over zero, which for a
    rank correlation means better than a random ranking."""
    if metric not in candidate:
        return False
    floor = 0.0 if incumbent is None or metric not in incumbent else incumbent[metric]
    return candidate[metric] > floor + margin


class TrainingStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # too little new feedback to learn from: nothing was trained


@attrs.define
class TrainingRun:
    """One training run, queued to finished: its parameters, the dataset and split it used, the held-out
    evaluation of candidate, active version and random baseline, and whether the candidate was promoted."""

    id: str
    status: TrainingStatus = TrainingStatus.QUEUED
    params: dict[str, Any] = attrs.field(factory=dict)
    metrics: dict[str, float] = attrs.field(factory=dict)
    candidate_version: str | None = None
    promoted: bool = False
    error: str | None = None
    created_at: datetime = attrs.field(factory=utcnow)
    finished_at: datetime | None = None
    dataset: dict[str, Any] = attrs.field(factory=dict)
    report: dict[str, Any] = attrs.field(factory=dict)
    started_at: datetime | None = None
    requested_by: str | None = None

    def start(self, now: datetime) -> None:
        if self.status is not TrainingStatus.QUEUED:
            raise IllegalTransition(f"training run {self.id} is {self.status.value}, not queued")
        self.status, self.started_at = TrainingStatus.RUNNING, now

    def resume(self, now: datetime) -> None:
        """Take over a run that was interrupted (still marked running) or failed: it goes on from its
        checkpoint."""
        if self.status not in (TrainingStatus.RUNNING, TrainingStatus.FAILED):
            raise IllegalTransition(f"training run {self.id} is {self.status.value}; nothing to resume")
        self.status, self.error, self.finished_at = TrainingStatus.RUNNING, None, None
        self.started_at = self.started_at or now

    def succeed(
        self, now: datetime, candidate: str | None, promoted: bool, metrics: dict[str, float]
    ) -> None:
        self._finish(now, TrainingStatus.SUCCEEDED)
        self.candidate_version, self.promoted, self.metrics = candidate, promoted, metrics

    def fail(self, now: datetime, reason: str) -> None:
        self._finish(now, TrainingStatus.FAILED)
        self.error = reason

    def skip(self, now: datetime, reason: str) -> None:
        self._finish(now, TrainingStatus.SKIPPED)
        self.report = {**self.report, "skipped": reason}

    @property
    def finished(self) -> bool:
        return self.status in (TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.SKIPPED)

    def _finish(self, now: datetime, status: TrainingStatus) -> None:
        if self.status is not TrainingStatus.RUNNING:
            raise IllegalTransition(f"training run {self.id} is {self.status.value}, not running")
        self.status, self.finished_at = status, now
