"""Every error is JSON, ``{"error": {"code", "message"}, "request_id"}``; domain errors map to statuses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from domain.errors import (
    Conflict,
    CredentialsMissing,
    DependencyUnavailable,
    InvalidInput,
    MediaError,
    MediaLimitExceeded,
    NotFound,
    OpusClipError,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    UnsupportedMedia,
)

log = structlog.get_logger("opusclip.http")

# Looked up along the error's MRO, so a new subclass inherits its parent's status. Add new domain errors
# here (e.g. an auth error -> 401/403) rather than in the routes.
STATUS_BY_ERROR: dict[type[OpusClipError], int] = {
    Unauthenticated: 401,
    PermissionDenied: 403,
    RateLimited: 429,
    UnsupportedMedia: 415,
    MediaLimitExceeded: 413,
    MediaError: 422,
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    DependencyUnavailable: 503,
    OpusClipError: 400,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "dependency_unavailable",
}


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, Mapping) else None


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(error: OpusClipError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def body_kind(request: Request, *, multipart: bool = False) -> str:
    """``json`` or ``multipart``: what the route accepts, judged by Content-Type before the body is read.

    No Content-Type is taken as JSON; anything else the route does not take is a 415."""
    content_type = request.headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type in ("", "application/json") or media_type.endswith("+json"):
        return "json"
    if multipart and media_type == "multipart/form-data":
        if "boundary=" not in params.lower():
            raise HTTPException(415, "multipart/form-data needs a boundary parameter")
        return "multipart"
    accepted = "application/json" + (" or multipart/form-data" if multipart else "")
    raise HTTPException(415, f"send {accepted}, not {media_type}")


async def read_object(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The body as a JSON object with no field outside ``fields``; InvalidInput (422) otherwise."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object with " + ", ".join(fields))
    unknown = set(body) - set(fields)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    return body


async def read_json(request: Request) -> Any:
    """The request body as JSON; malformed JSON is the client's mistake (422), not a crash (500)."""
    body_kind(request)
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"request body is not valid JSON: {error}") from None


def headers_for(error: OpusClipError) -> dict[str, str]:
    """RFC 6750 challenges for auth failures, Retry-After where waiting helps."""
    if isinstance(error, CredentialsMissing):
        return {"WWW-Authenticate": 'Bearer realm="opusclip"'}
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": _challenge("invalid_token", error)}
    if isinstance(error, PermissionDenied):
        return {"WWW-Authenticate": _challenge("insufficient_scope", error)}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(max(1, error.retry_after))}
    if isinstance(error, DependencyUnavailable):
        return {"Retry-After": "5"}
    return {}


def _challenge(kind: str, error: OpusClipError) -> str:
    # A header is ASCII: a quote or backslash would end the quoted string early.
    text = error.message.encode("ascii", "replace").decode().replace("\\", "").replace('"', "'")
    return f'Bearer realm="opusclip", error="{kind}", error_description="{text}"'


async def on_opusclip_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, OpusClipError)  # registered for OpusClipError only
    status = status_for(error)
    if status >= 500:
        log.warning("http.dependency_error", code=error.code, error=error.message)
    return error_response(
        status, error.code, error.message, request_id_of(request.scope), headers=headers_for(error)
    )


async def on_http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # registered for HTTPException only
    code = _CODE_BY_STATUS.get(error.status_code, f"http_{error.status_code}")
    return error_response(
        error.status_code, code, str(error.detail), request_id_of(request.scope), headers=error.headers
    )


EXCEPTION_HANDLERS = {OpusClipError: on_opusclip_error, HTTPException: on_http_exception}
