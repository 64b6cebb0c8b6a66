"""The studio: ``GET /``, a web page over the v1 API (upload, progress, clip previews, ratings, score plot).

Plain ES modules and CSS from ``studio/``, no build step, nothing from another host. The page signs in with
a bearer token the user pastes, so serving it needs none. Every response carries a strict
Content-Security-Policy: scripts and styles from this origin only (no inline ones), no HTML from strings
(Trusted Types), no framing, no form posts; media from ``blob:`` URLs, since the page fetches each clip with
its bearer token and plays the bytes it got.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.config import AppConfig
from domain.media import Aspect, ClipOptions

STUDIO_DIR = Path(__file__).with_name("studio")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Revalidated on every load (StaticFiles answers with ETags): a new release reaches open browsers.
    "Cache-Control": "no-cache",
}


class SecurityHeaders:
    """Pure ASGI: puts SECURITY_HEADERS on every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def page(request: Request) -> Response:
    return FileResponse(
        STUDIO_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


def studio_routes(config: AppConfig) -> list[BaseRoute]:
    settings = {
        "max_upload_bytes": config.max_upload_bytes,
        "aspects": [aspect.value for aspect in Aspect],
        "defaults": ClipOptions().to_dict(),
    }

    async def studio_config(request: Request) -> Response:
        """What the page checks before it sends anything (the upload limit) and its form's defaults."""
        return JSONResponse(settings, headers=SECURITY_HEADERS)

    return [
        Route("/", page, methods=["GET"], name="studio"),
        Route("/studio/config.json", studio_config, methods=["GET"], name="studio_config"),
        Mount("/studio", SecurityHeaders(StaticFiles(directory=STUDIO_DIR)), name="studio_files"),
    ]
