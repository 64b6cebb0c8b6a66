"""Entities with identity: videos, jobs, stored clips, feedback, model versions and training runs."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs


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


@attrs.define
class ModelVersion:
    id: str
    version: str
    artifact_path: str
    metrics: dict[str, float] = attrs.field(factory=dict)
    card: dict[str, Any] = attrs.field(factory=dict)
    active: bool = False
    created_at: datetime = attrs.field(factory=utcnow)


class TrainingStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.define
class TrainingRun:
    id: str
    status: TrainingStatus = TrainingStatus.QUEUED
    params: dict[str, Any] = attrs.field(factory=dict)
    metrics: dict[str, float] = attrs.field(factory=dict)
    candidate_version: str | None = None
    promoted: bool = False
    error: str | None = None
    created_at: datetime = attrs.field(factory=utcnow)
    finished_at: datetime | None = None
