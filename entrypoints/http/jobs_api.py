"""``/v1/jobs``: submit (JSON or multipart upload), read, list, follow (server-sent events) and cancel."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from lagom import injectable
from lagom.integrations.starlette import StarletteIntegration
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from adapters.media.service_fetcher import validate_source_url
from application.cancel_job import CancelJob
from application.config import AppConfig
from application.follow_job import FollowJob
from application.get_job import GetJob, JobView
from application.job_scores import GetJobScores
from application.list_jobs import ListJobs
from application.submit_job import SubmitJob, SubmitJobRequest, SubmitJobResult
from domain.auth import RouteClass, Scope
from domain.errors import InvalidInput
from domain.jobs import UPLOAD_PREFIX
from entrypoints.http.errors import body_kind, read_object
from entrypoints.http.guard import Guard
from entrypoints.http.uploads import receive_upload
from entrypoints.http.views import job_json, job_view_json

IDEMPOTENCY_HEADER = "idempotency-key"
_MAX_KEY_CHARS = 255
EVENT_STREAM_SECONDS = 300.0
RECONNECT_MILLISECONDS = 2000


async def submit_job(
    request: Request,
    guard: Guard = injectable,
    submit: SubmitJob = injectable,
    config: AppConfig = injectable,
) -> Response:
    user = await guard(request, Scope.VIDEOS_WRITE, RouteClass.SUBMIT)
    key = _idempotency_key(request)
    if body_kind(request, multipart=True) == "multipart":
        upload = await receive_upload(request, config.media_dir / "uploads", config.max_upload_bytes)
        upload_request = SubmitJobRequest(
            owner=user.subject,
            source=f"{UPLOAD_PREFIX}{upload.upload_id}",
            options=upload.options,
            idempotency_key=key,
            source_name=upload.filename,
            content_sha256=upload.sha256,
        )
        result: SubmitJobResult | None = None
        try:
            result = await submit(upload_request)
        finally:
            if not _kept(result, upload.upload_id):
                upload.path.unlink(missing_ok=True)
    else:
        body = await read_object(request, ("url", "options"))
        url = body.get("url")
        if not isinstance(url, str):
            raise InvalidInput("url: an http(s) URL is required")
        options = body.get("options", {})
        if not isinstance(options, dict):
            raise InvalidInput("options: must be a JSON object")
        source = validate_source_url(url, config.fetch_allowed_networks)
        result = await submit(SubmitJobRequest(user.subject, source, options, idempotency_key=key))
    return accepted(result, request)


def _kept(result: SubmitJobResult | None, upload_id: str) -> bool:
    """An upload stays only when the job that was made (or found) reads it."""
    return result is not None and result.job.source == f"{UPLOAD_PREFIX}{upload_id}"


def accepted(result: SubmitJobResult, request: Request) -> JSONResponse:
    body = job_json(result.job, request)
    status = 202 if result.created else 200
    return JSONResponse(body, status_code=status, headers={"Location": body["links"]["self"]})


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > _MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1-{_MAX_KEY_CHARS} printable characters")
    return key


async def get_job(request: Request, guard: Guard = injectable, get: GetJob = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    view = await get(user.subject, request.path_params["job_id"])
    return JSONResponse(job_view_json(view, request))


async def list_jobs(request: Request, guard: Guard = injectable, jobs: ListJobs = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    limit_text = request.query_params.get("limit", "20")
    if not limit_text.isdigit():
        raise InvalidInput("limit must be a whole number between 1 and 100")
    page = await jobs(user.subject, int(limit_text), request.query_params.get("cursor") or None)
    body: dict[str, Any] = {
        "jobs": [job_json(job, request) for job in page.jobs],
        "next_cursor": page.next_cursor,
    }
    if page.next_cursor:
        body["links"] = {"next": str(request.url.include_query_params(cursor=page.next_cursor))}
    return JSONResponse(body)


async def cancel_job(request: Request, guard: Guard = injectable, cancel: CancelJob = injectable) -> Response:
    user = await guard(request, Scope.VIDEOS_WRITE, RouteClass.READ)
    job = await cancel(user.subject, request.path_params["job_id"])
    # 200: it ended now; 202: it stops at its next stage boundary.
    return JSONResponse(job_json(job, request), status_code=200 if job.status.finished else 202)


async def job_events(request: Request, guard: Guard = injectable, follow: FollowJob = injectable) -> Response:
    """Server-sent events: one ``progress`` event per change of status, stage or progress, then ``end``.

    The stream wakes on the database's change notifications, so even a stage of a few milliseconds shows.
    A stream lasts at most EVENT_STREAM_SECONDS (proxies drop idle-looking long connections anyway); the
    first event carries ``retry``, so an EventSource reconnects and goes on where it left off."""
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    views = follow(user.subject, request.path_params["job_id"], seconds=EVENT_STREAM_SECONDS)
    first = await anext(views)  # 404 before the stream starts

    async def events() -> AsyncIterator[dict[str, Any]]:
        async with contextlib.aclosing(views):  # a client that leaves stops the watch at once
            view: JobView | None = first
            retry: dict[str, Any] = {"retry": RECONNECT_MILLISECONDS}
            while view is not None:
                body = _dumps(job_view_json(view, request))
                yield {"event": "progress", "data": body, **retry}
                retry = {}
                if view.job.status.finished:
                    yield {"event": "end", "data": body}
                    return
                view = await anext(views, None)

    return EventSourceResponse(events(), ping=15)


async def job_scores(
    request: Request, guard: Guard = injectable, scores: GetJobScores = injectable
) -> Response:
    """The model's per-second scores for a finished job: what its clips were picked from."""
    user = await guard(request, Scope.VIDEOS_READ, RouteClass.READ)
    found = await scores(user.subject, request.path_params["job_id"])
    return JSONResponse(
        {"job_id": found.job_id, "step_seconds": found.step_seconds, "scores": list(found.scores)}
    )


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def job_routes(deps: StarletteIntegration) -> list[BaseRoute]:
    return [
        deps.route("/v1/jobs", submit_job, methods=["POST"], name="submit_job"),
        deps.route("/v1/jobs", list_jobs, methods=["GET"], name="list_jobs"),
        deps.route("/v1/jobs/{job_id}", get_job, methods=["GET"], name="get_job"),
        deps.route("/v1/jobs/{job_id}", cancel_job, methods=["DELETE"], name="cancel_job"),
        deps.route("/v1/jobs/{job_id}/events", job_events, methods=["GET"], name="job_events"),
        deps.route("/v1/jobs/{job_id}/scores", job_scores, methods=["GET"], name="job_scores"),
    ]
