"""Pure-ASGI middleware: request ids, and an access log that also feeds metrics and catches crashes.

Order (outermost first): RequestIdMiddleware -> AccessLogMiddleware -> Starlette's exception handling ->
router. The request id wraps everything, so even a 500 written by the access log carries X-Request-ID.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import error_response, request_id_of

log = structlog.get_logger("opusclip.http")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"

# (method, route template, status, seconds) -> None
RequestObserver = Callable[[str, str, int, float], None]


class RequestIdMiddleware:
    """Honours a sane incoming X-Request-ID (else a uuid4 hex), binds it to the log context and the scope,
    and puts it on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        # bound_contextvars restores the previous context, so ids never leak between requests.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class AccessLogMiddleware:
    """One log line per request with the route template (bounded cardinality), status and duration.

    An exception that escapes the app is logged with its traceback and answered with a JSON 500 that
    tells the client nothing but the request id.
    """

    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")  # before a Mount extends it
        status = 500
        response_started = False

        async def send_recording(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        except Exception:
            status = 500
            log.exception("http.unhandled_error", method=scope["method"], path=scope["path"])
            if response_started:
                raise  # too late for an error body; the server closes the connection
            await error_response(500, "internal_error", "internal server error", request_id_of(scope))(
                scope, receive, send_recording
            )
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope, root_path)
            method = scope["method"]
            log.info(
                "http.request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(duration * 1000.0, 2),
            )
            if self.observer is not None:
                self.observer(method, route, status, duration)


def route_template(scope: Scope, root_path: str = "") -> str:
    """``/v1/jobs/{id}`` rather than the raw path, so logs and metric labels stay bounded.

    ``root_path`` is the scope's root path before routing: a route inside a Mount has a path relative to
    the mount, which appended its prefix to ``scope["root_path"]``.
    """
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    mount_prefix = scope.get("root_path", "")[len(root_path) :]
    return (mount_prefix + path) or "/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            try:
                return str(value.decode("ascii"))
            except UnicodeDecodeError:
                return None
    return None
