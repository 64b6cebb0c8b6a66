"""``GET /openapi.json``: the API's OpenAPI 3.1 document, complete enough for a schema fuzzer.

Written as data next to the routes it describes; ``tests/unit/test_openapi.py`` checks that every route of
the app is described (and nothing else), that the document is valid OpenAPI, and the e2e fuzz test holds
the live server to it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from domain.auth import Scope
from domain.jobs import JobStatus
from domain.media import CAPTION_FORMATS, Aspect
from domain.paging import MAX_PAGE_SIZE

_ERROR_STATUSES = {
    400: "Bad request",
    401: "Missing, invalid or expired bearer token",
    403: "The token lacks the route's scope",
    404: "No such resource (or it belongs to another user)",
    409: "Conflicts with the resource's state or an earlier request",
    413: "Upload over MAX_UPLOAD_BYTES",
    415: "Not an audio or video file, or a Content-Type the route does not take",
    422: "Invalid input; the message names the field",
    429: "Rate limit exceeded; see Retry-After",
    503: "A dependency is unavailable; see Retry-After",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": _ERROR_STATUSES[s], "content": _json(_ref("Error"))} for s in statuses}


_AUTH_ERRORS = (401, 403, 429)
_ID = {"type": "string", "minLength": 1, "maxLength": 200}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _operation(
    operation_id: str,
    summary: str,
    scope: Scope | None,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses}
    if scope is not None:
        operation["security"] = [{"bearerAuth": [scope.value]}]
        operation["responses"] = {**responses, **_errors(*_AUTH_ERRORS)}
    else:
        operation["security"] = []
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_seconds": {"type": "number", "minimum": 1, "maximum": 600, "default": 15},
        "max_seconds": {"type": "number", "minimum": 1, "maximum": 600, "default": 60},
        "max_clips": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
        "aspect": {"type": "string", "enum": [a.value for a in Aspect], "default": "source"},
        "gap_seconds": {
            "description": "least seconds between one clip's end and the next one's start, while the video "
            "offers clips that far apart",
            "type": "number",
            "minimum": 0,
            "maximum": 3600,
            "default": 10,
        },
        "burn_captions": {
            "description": "also draw the captions into the picture, the spoken word highlighted",
            "type": "boolean",
            "default": False,
        },
        "captions": {
            "description": "caption files to write: true (all formats), false (none) or a list of formats",
            "oneOf": [
                {"type": "boolean"},
                {
                    "type": "array",
                    "items": {"type": "string", "enum": sorted(CAPTION_FORMATS)},
                    "uniqueItems": True,
                },
            ],
        },
        "caption_formats": {
            "description": "the same as a list of formats (give one or the other)",
            "type": "array",
            "items": {"type": "string", "enum": sorted(CAPTION_FORMATS)},
            "uniqueItems": True,
        },
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "request_id"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": {"type": ["string", "null"]},
        },
    },
    "JobOptions": _OPTIONS,
    "JobRequest": {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": 2048, "description": "an http(s) URL"},
            "options": _ref("JobOptions"),
        },
    },
    "JobUpload": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream"},
            "options": _ref("JobOptions"),
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "stage", "progress", "error", "source", "options", "attempts", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "stage": {"type": "string"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "error": {"oneOf": [{"type": "null"}, _ref("JobError")]},
            "source": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"type": "string", "enum": ["url", "upload"]},
                    "url": {"type": "string"},
                    "filename": {"type": ["string", "null"]},
                },
            },
            "options": {"type": "object"},
            "attempts": {"type": "integer", "minimum": 0},
            "cancel_requested": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "model_version": {"type": ["string", "null"]},
            "cache_hits": {"type": "array", "items": {"type": "string"}},
            "clips": {"type": "array", "items": _ref("Clip")},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "JobError": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": ["string", "null"]}},
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": {"type": ["string", "null"]},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Clip": {
        "type": "object",
        "required": ["id", "job_id", "rank", "start", "end", "duration", "score", "title", "links"],
        "properties": {
            "id": {"type": "string"},
            "job_id": {"type": "string"},
            "rank": {"type": "integer", "minimum": 1},
            "start": {"type": "number"},
            "end": {"type": "number"},
            "duration": {"type": "number"},
            "score": {"type": "number"},
            "title": {"type": "string"},
            "transcript": {"type": "string"},
            "model_version": {"type": "string"},
            "my_rating": {"enum": [-1, 1, None], "description": "the caller's own rating, null if none"},
            "created_at": {"type": "string", "format": "date-time"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "FeedbackRequest": {
        "type": "object",
        "required": ["rating"],
        "additionalProperties": False,
        "properties": {"rating": {"type": "integer", "enum": [-1, 1]}},
    },
    "Feedback": {
        "type": "object",
        "required": ["clip_id", "rating", "rated_at"],
        "properties": {
            "clip_id": {"type": "string"},
            "rating": {"type": "integer", "enum": [-1, 1]},
            "rated_at": {"type": "string", "format": "date-time"},
        },
    },
    "LegacyProcessRequest": {
        "type": "object",
        "required": ["video_url"],
        "additionalProperties": False,
        "properties": {
            "video_url": {"type": "string", "format": "uri", "maxLength": 2048},
            "processing_type": {
                "type": "string",
                "enum": ["clips", "captions", "analysis"],
                "default": "clips",
            },
            "max_length": {"type": "number", "minimum": 1, "maximum": 500, "default": 60},
        },
    },
    "JobScores": {
        "type": "object",
        "required": ["job_id", "step_seconds", "scores"],
        "properties": {
            "job_id": {"type": "string"},
            "step_seconds": {"type": "number", "exclusiveMinimum": 0},
            "scores": {
                "type": "array",
                "items": {"type": "number"},
                "description": "the model's score for each step of the video, from its start",
            },
        },
    },
    "JobEvent": {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": ["progress", "end"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "version", "status", "metrics", "dataset", "created_at", "links"],
        "properties": {
            "id": {"type": "string"},
            "version": {"type": "string"},
            "status": {"type": "string", "enum": ["candidate", "active", "retired"]},
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "dataset": {"type": "object"},
            "created_at": {"type": "string", "format": "date-time"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": _ref("Model")}},
    },
    "TrainingRunRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "optional overrides of the service's training settings",
        "properties": {
            "epochs": {"type": "integer", "minimum": 1, "maximum": 10000},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 4096},
            "learning_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
            "seed": {"type": "integer", "minimum": 0, "maximum": 4294967295},
            "force": {"type": "boolean", "description": "train even with little new feedback"},
        },
    },
    "TrainingRun": {
        "type": "object",
        "required": ["id", "status", "params", "promoted", "created_at", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "skipped"]},
            "params": {"type": "object"},
            "candidate_version": {"type": ["string", "null"]},
            "promoted": {"type": "boolean"},
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "dataset": {"type": "object"},
            "report": {"type": "object"},
            "error": {"type": ["string", "null"]},
            "requested_by": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "version": {"type": "string"}},
    },
}

_JOB = _json(_ref("Job"))
_JOB_ID = _path_id("job_id")
_CLIP_ID = _path_id("clip_id")
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "the same key and body give the same job; the same key with another body is a 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
_CREATED = {
    "202": {"description": "Job queued; Location names it", "content": _JOB},
    "200": {"description": "A repeat of an earlier request with this Idempotency-Key", "content": _JOB},
}
_FILE = {"description": "The file", "content": {}}
_TRAIN_RESPONSES = {
    "202": {
        "description": "Run queued for a worker; Location names it",
        "content": _json(_ref("TrainingRun")),
    },
    **_errors(415, 422, 503),
}
_TRAIN = _operation(
    "queueTrainingRun",
    "Queue a training run on the users' ratings; its candidate is promoted only if it measures better",
    Scope.MODELS_TRAIN,
    _TRAIN_RESPONSES,
    body={"required": False, "content": _json(_ref("TrainingRunRequest"))},
)

# The studio (`GET /`, `/studio/config.json`, `/studio/*` files; entrypoints/http/studio.py) is left out on
# purpose: it is a web page and its files, not API operations; clients and fuzzers have nothing to call there.
_PATHS: dict[str, Any] = {
    "/v1/jobs": {
        "post": _operation(
            "submitJob",
            "Queue a video (by URL or upload) for clipping",
            Scope.VIDEOS_WRITE,
            {**_CREATED, **_errors(409, 413, 415, 422, 503)},
            parameters=[_IDEMPOTENCY],
            body={
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("JobRequest")},
                    "multipart/form-data": {
                        "schema": _ref("JobUpload"),
                        "encoding": {"options": {"contentType": "application/json"}},
                    },
                },
            },
        ),
        "get": _operation(
            "listJobs",
            "The caller's jobs, newest first",
            Scope.VIDEOS_READ,
            {"200": {"description": "A page of jobs", "content": _json(_ref("JobList"))}, **_errors(422)},
            parameters=[
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 512}},
            ],
        ),
    },
    "/v1/jobs/{job_id}": {
        "get": _operation(
            "getJob",
            "A job: status, stage, progress, error, and its clips when done",
            Scope.VIDEOS_READ,
            {"200": {"description": "The job", "content": _JOB}, **_errors(404)},
            parameters=[_JOB_ID],
        ),
        "delete": _operation(
            "cancelJob",
            "Cancel a job (a running one stops at its next stage boundary)",
            Scope.VIDEOS_WRITE,
            {
                "200": {"description": "Cancelled", "content": _JOB},
                "202": {"description": "Cancellation requested; the job stops shortly", "content": _JOB},
                **_errors(404, 409),
            },
            parameters=[_JOB_ID],
        ),
    },
    "/v1/jobs/{job_id}/events": {
        "get": _operation(
            "jobEvents",
            "Server-sent events: the job's progress until it ends",
            Scope.VIDEOS_READ,
            {
                "200": {
                    "description": "`progress` events with the job (as JSON) for data, then `end`",
                    "content": {"text/event-stream": {"schema": _ref("JobEvent")}},
                },
                **_errors(404),
            },
            parameters=[_JOB_ID],
        )
    },
    "/v1/jobs/{job_id}/scores": {
        "get": _operation(
            "getJobScores",
            "The model's per-second scores for a succeeded job (what its clips were picked from)",
            Scope.VIDEOS_READ,
            {
                "200": {"description": "The scores", "content": _json(_ref("JobScores"))},
                **_errors(404),
            },
            parameters=[_JOB_ID],
        )
    },
    "/v1/clips/{clip_id}": {
        "get": _operation(
            "getClip",
            "A clip's metadata",
            Scope.VIDEOS_READ,
            {"200": {"description": "The clip", "content": _json(_ref("Clip"))}, **_errors(404)},
            parameters=[_CLIP_ID],
        )
    },
    "/v1/clips/{clip_id}/media": {
        "get": _operation(
            "getClipMedia",
            "The clip's mp4 (HTTP Range supported)",
            Scope.VIDEOS_READ,
            {
                "200": {"description": "The mp4", "content": {"video/mp4": {"schema": {"type": "string"}}}},
                "206": {
                    "description": "A range of it",
                    "content": {"video/mp4": {"schema": {"type": "string"}}},
                },
                "416": {"description": "Range not satisfiable"},
                **_errors(404),
            },
            parameters=[
                _CLIP_ID,
                {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
        )
    },
    "/v1/clips/{clip_id}/captions.srt": {
        "get": _operation(
            "getClipSrt",
            "The clip's captions as SRT",
            Scope.VIDEOS_READ,
            {
                "200": {
                    "description": "SRT",
                    "content": {"application/x-subrip": {"schema": {"type": "string"}}},
                },
                **_errors(404),
            },
            parameters=[_CLIP_ID],
        )
    },
    "/v1/clips/{clip_id}/captions.vtt": {
        "get": _operation(
            "getClipVtt",
            "The clip's captions as WebVTT",
            Scope.VIDEOS_READ,
            {
                "200": {"description": "WebVTT", "content": {"text/vtt": {"schema": {"type": "string"}}}},
                **_errors(404),
            },
            parameters=[_CLIP_ID],
        )
    },
    "/v1/clips/{clip_id}/feedback": {
        "post": _operation(
            "rateClip",
            "Rate a clip: 1 (thumbs up) or -1 (thumbs down); rating again replaces the rating",
            Scope.VIDEOS_READ,
            {
                "200": {"description": "The rating", "content": _json(_ref("Feedback"))},
                **_errors(404, 415, 422),
            },
            parameters=[_CLIP_ID],
            body={"required": True, "content": _json(_ref("FeedbackRequest"))},
        )
    },
    "/video/process": {
        "post": _operation(
            "processVideo",
            "The original design's route: the same job as POST /v1/jobs",
            Scope.VIDEOS_WRITE,
            {**_CREATED, **_errors(415, 422, 503)},
            body={"required": True, "content": _json(_ref("LegacyProcessRequest"))},
        )
    },
    "/v1/models": {
        "get": _operation(
            "listModels",
            "The model registry, newest first",
            Scope.MODELS_TRAIN,
            {"200": {"description": "Every version", "content": _json(_ref("ModelList"))}, **_errors(503)},
        )
    },
    "/v1/models/{model_id}/activate": {
        "post": _operation(
            "activateModel",
            "Make a version the active one (promotion by hand, or rollback); jobs use it from the next one",
            Scope.MODELS_ADMIN,
            {
                "200": {"description": "The now active version", "content": _json(_ref("Model"))},
                **_errors(404, 503),
            },
            parameters=[_path_id("model_id")],
        )
    },
    "/v1/training-runs": {
        "post": _TRAIN,
    },
    "/v1/training-runs/{run_id}": {
        "get": _operation(
            "getTrainingRun",
            "A training run, queued to finished, with its evaluation report",
            Scope.MODELS_TRAIN,
            {"200": {"description": "The run", "content": _json(_ref("TrainingRun"))}, **_errors(404, 503)},
            parameters=[_path_id("run_id")],
        )
    },
    "/video/train": {
        "post": _operation(
            "trainModel",
            "The original design's training route: the same as POST /v1/training-runs",
            Scope.MODELS_TRAIN,
            _TRAIN_RESPONSES,
            body={"required": False, "content": _json(_ref("TrainingRunRequest"))},
        )
    },
    "/health": {
        "get": _operation(
            "health", "Liveness", None, {"200": {"description": "Alive", "content": _json(_ref("Health"))}}
        )
    },
    "/health/detailed": {
        "get": _operation(
            "healthDetailed",
            "Each dependency's health",
            None,
            {
                "200": {"description": "Ready", "content": _json(_ref("Health"))},
                "503": {"description": "A required dependency is down", "content": _json(_ref("Health"))},
            },
        )
    },
    "/metrics": {
        "get": _operation(
            "metrics",
            "Prometheus metrics",
            None,
            {
                "200": {
                    "description": "Prometheus text",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        )
    },
    "/openapi.json": {
        "get": _operation(
            "openapi", "This document", None, {"200": {"description": "OpenAPI 3.1", "content": _json({})}}
        )
    },
}


def document(version: str, *, metrics: bool = True) -> dict[str, Any]:
    paths = {path: ops for path, ops in _PATHS.items() if metrics or path != "/metrics"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Video-OpusClip",
            "version": version,
            "description": "Long videos in, ranked highlight clips out. Errors are "
            '`{"error": {"code", "message"}, "request_id"}`; every response carries X-Request-ID.',
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.openapi)
