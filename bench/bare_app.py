"""The bare endpoint bench/api.py sets beside ``GET /v1/jobs/{id}``: one async Starlette route, nothing else.

    BARE_BODY='{"id": ...}' uvicorn --app-dir bench --factory bare_app:create_app

No token, no rate limit, no database, no middleware: it answers the real route's path with the JSON in
``BARE_BODY`` (the real job's body, so both servers encode and send the same bytes on every request).
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    body: dict[str, Any] = json.loads(os.environ.get("BARE_BODY", "{}"))

    async def job(request: Request) -> JSONResponse:
        return JSONResponse(body)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/jobs/{job_id}", job), Route("/health", health)])
