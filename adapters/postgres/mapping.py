"""Rows <-> domain entities, spelled out field by field so a schema change cannot slip through silently."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from domain.jobs import (
    Feedback,
    Job,
    JobStatus,
    ModelVersion,
    StoredClip,
    TrainingRun,
    TrainingStatus,
    Video,
)


def video_values(video: Video) -> dict[str, Any]:
    return {
        "id": video.id,
        "sha256": video.sha256,
        "source": video.source,
        "duration": video.duration,
        "width": video.width,
        "height": video.height,
        "fps": video.fps,
        "has_audio": video.has_audio,
        "size_bytes": video.size_bytes,
        "created_at": video.created_at,
    }


def video_entity(row: sa.Row[Any]) -> Video:
    return Video(
        id=row.id,
        sha256=row.sha256,
        source=row.source,
        duration=row.duration,
        width=row.width,
        height=row.height,
        fps=row.fps,
        has_audio=row.has_audio,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


def job_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "owner": job.owner,
        "source": job.source,
        "options": job.options,
        "status": job.status.value,
        "stage": job.stage,
        "progress": job.progress,
        "error_code": job.error_code,
        "error": job.error,
        "video_id": job.video_id,
        "attempts": job.attempts,
        "idempotency_key": job.idempotency_key,
        "lease_token": job.lease_token,
        "lease_expires_at": job.lease_expires_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def job_entity(row: sa.Row[Any]) -> Job:
    return Job(
        id=row.id,
        owner=row.owner,
        source=row.source,
        options=row.options,
        status=JobStatus(row.status),
        stage=row.stage,
        progress=row.progress,
        error_code=row.error_code,
        error=row.error,
        video_id=row.video_id,
        attempts=row.attempts,
        idempotency_key=row.idempotency_key,
        lease_token=row.lease_token,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def clip_values(clip: StoredClip) -> dict[str, Any]:
    return {
        "id": clip.id,
        "job_id": clip.job_id,
        "video_id": clip.video_id,
        "rank": clip.rank,
        "start_seconds": clip.start,
        "end_seconds": clip.end,
        "score": clip.score,
        "title": clip.title,
        "transcript": clip.transcript,
        "media_path": clip.media_path,
        "captions": clip.captions,
        "model_version": clip.model_version,
        "created_at": clip.created_at,
    }


def clip_entity(row: sa.Row[Any]) -> StoredClip:
    return StoredClip(
        id=row.id,
        job_id=row.job_id,
        video_id=row.video_id,
        rank=row.rank,
        start=row.start_seconds,
        end=row.end_seconds,
        score=row.score,
        title=row.title,
        transcript=row.transcript,
        media_path=row.media_path,
        captions=row.captions,
        model_version=row.model_version,
        created_at=row.created_at,
    )


def feedback_values(item: Feedback) -> dict[str, Any]:
    return {
        "id": item.id,
        "clip_id": item.clip_id,
        "rater": item.user,
        "rating": item.rating,
        "created_at": item.created_at,
    }


def feedback_entity(row: sa.Row[Any]) -> Feedback:
    return Feedback(
        id=row.id, clip_id=row.clip_id, user=row.rater, rating=row.rating, created_at=row.created_at
    )


def model_values(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "version": version.version,
        "artifact_path": version.artifact_path,
        "metrics": version.metrics,
        "card": version.card,
        "active": version.active,
        "created_at": version.created_at,
    }


def model_entity(row: sa.Row[Any]) -> ModelVersion:
    return ModelVersion(
        id=row.id,
        version=row.version,
        artifact_path=row.artifact_path,
        metrics=row.metrics,
        card=row.card,
        active=row.active,
        created_at=row.created_at,
    )


def run_values(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "params": run.params,
        "metrics": run.metrics,
        "candidate_version": run.candidate_version,
        "promoted": run.promoted,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def run_entity(row: sa.Row[Any]) -> TrainingRun:
    return TrainingRun(
        id=row.id,
        status=TrainingStatus(row.status),
        params=row.params,
        metrics=row.metrics,
        candidate_version=row.candidate_version,
        promoted=row.promoted,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
