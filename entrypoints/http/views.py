"""The JSON shapes of the API's resources (they are also the OpenAPI schema's components)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request

from application.get_job import JobView
from domain.jobs import UPLOAD_PREFIX, Feedback, Job, JobStatus, StoredClip


def job_json(
    job: Job,
    request: Request,
    clips: tuple[StoredClip, ...] | None = None,
    ratings: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "stage": job.stage,
        "progress": round(job.progress, 4),
        "error": None if job.error_code is None else {"code": job.error_code, "message": job.error},
        "source": _source(job),
        "options": job.options,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "created_at": iso_time(job.created_at),
        "updated_at": iso_time(job.updated_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
        "model_version": job.details.get("model_version"),
        "cache_hits": job.details.get("cache_hits", []),
        "links": {"self": f"{base_url(request)}/v1/jobs/{job.id}"},
    }
    if clips is not None and job.status is JobStatus.SUCCEEDED:
        mine = ratings or {}
        body["clips"] = [clip_json(clip, request, mine.get(clip.id)) for clip in clips]
    return body


def job_view_json(view: JobView, request: Request) -> dict[str, Any]:
    return job_json(view.job, request, view.clips, view.ratings)


def clip_json(clip: StoredClip, request: Request, my_rating: int | None = None) -> dict[str, Any]:
    this = f"{base_url(request)}/v1/clips/{clip.id}"
    links = {"self": this, "media": f"{this}/media", "feedback": f"{this}/feedback"}
    for fmt in sorted(clip.captions):
        links[f"captions_{fmt}"] = f"{this}/captions.{fmt}"
    return {
        "id": clip.id,
        "job_id": clip.job_id,
        "rank": clip.rank,
        "start": round(clip.start, 3),
        "end": round(clip.end, 3),
        "duration": round(clip.end - clip.start, 3),
        "score": round(clip.score, 4),
        "title": clip.title,
        "transcript": clip.transcript,
        "model_version": clip.model_version,
        "my_rating": my_rating,  # the caller's own rating (-1 or 1), null when they have not rated it
        "created_at": iso_time(clip.created_at),
        "links": links,
    }


def feedback_json(item: Feedback) -> dict[str, Any]:
    return {"clip_id": item.clip_id, "rating": item.rating, "rated_at": iso_time(item.created_at)}


_BASE_KEY = "opusclip.base_url"


def base_url(request: Request) -> str:
    # Built by hand, not with url_for: url_for tries every route in turn, raising as it goes, and the job
    # routes are the API's busiest. tests/e2e follows these links, so a route that moves breaks them there.
    # Once per request: a page of jobs and their clips asks for it dozens of times.
    base: str | None = request.scope.get(_BASE_KEY)
    if base is None:
        base = request.scope[_BASE_KEY] = str(request.base_url).rstrip("/")
    return base


def _source(job: Job) -> dict[str, Any]:
    if job.source.startswith(UPLOAD_PREFIX):
        return {"kind": "upload", "filename": job.source_name}
    return {"kind": "url", "url": job.source}


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
