"""The routes of the system's original design, kept as thin aliases of their v1 twins."""

from __future__ import annotations

from typing import Any

from lagom import injectable
from lagom.integrations.starlette import StarletteIntegration
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adapters.media.service_fetcher import validate_source_url
from application.config import AppConfig
from application.submit_job import SubmitJob, SubmitJobRequest
from application.training_runs import QueueTrainingRun
from domain.auth import RouteClass, Scope
from domain.errors import InvalidInput, SourceRejected
from entrypoints.http.errors import read_object
from entrypoints.http.guard import Guard
from entrypoints.http.jobs_api import accepted
from entrypoints.http.models_api import queue_run

PROCESSING_TYPES = ("clips", "captions", "analysis")
MAX_LENGTH_RANGE = (1, 500)


async def video_process(
    request: Request,
    guard: Guard = injectable,
    submit: SubmitJob = injectable,
    config: AppConfig = injectable,
) -> Response:
    """``{"video_url", "processing_type", "max_length"}`` → the same job ``POST /v1/jobs`` makes."""
    user = await guard(request, Scope.VIDEOS_WRITE, RouteClass.SUBMIT)
    body = await read_object(request, ("video_url", "processing_type", "max_length"))
    url = body.get("video_url")
    if not isinstance(url, str):
        raise InvalidInput("video_url: an http(s) URL is required")
    try:
        url = validate_source_url(url, config.fetch_allowed_networks)
    except SourceRejected as error:
        raise InvalidInput(f"video_url: {error.message}") from None
    kind = body.get("processing_type", "clips")
    if kind not in PROCESSING_TYPES:
        raise InvalidInput(f"processing_type: must be one of {', '.join(PROCESSING_TYPES)}")
    longest = body.get("max_length", 60)
    low, high = MAX_LENGTH_RANGE
    if isinstance(longest, bool) or not isinstance(longest, int | float) or not low <= longest <= high:
        raise InvalidInput(f"max_length: the longest clip in seconds, a number from {low} to {high}")
    options: dict[str, Any] = {"max_seconds": float(longest), "min_seconds": float(min(15, longest))}
    # "analysis" asks for the ranking, not for caption files; the other two get both formats.
    options["caption_formats"] = [] if kind == "analysis" else ["srt", "vtt"]
    result = await submit(SubmitJobRequest(owner=user.subject, source=url, options=options))
    return accepted(result, request)


async def video_train(
    request: Request, guard: Guard = injectable, queue: QueueTrainingRun = injectable
) -> Response:
    """The original design's name for ``POST /v1/training-runs``: queues a training run for a worker."""
    user = await guard(request, Scope.MODELS_TRAIN, RouteClass.SUBMIT)
    return await queue_run(request, user.subject, queue)


def legacy_routes(deps: StarletteIntegration) -> list[BaseRoute]:
    return [
        deps.route("/video/process", video_process, methods=["POST"], name="video_process"),
        deps.route("/video/train", video_train, methods=["POST"], name="video_train"),
    ]
