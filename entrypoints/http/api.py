"""The API's own routes, bound to the container: Lagom builds each route's use case by type per request."""

from __future__ import annotations

from lagom import Container
from lagom.integrations.starlette import StarletteIntegration
from starlette.routing import BaseRoute

from entrypoints.http.clips_api import clip_routes
from entrypoints.http.jobs_api import job_routes
from entrypoints.http.legacy_api import legacy_routes
from entrypoints.http.models_api import model_routes


def api_routes(container: Container) -> list[BaseRoute]:
    deps = StarletteIntegration(container)
    return [*job_routes(deps), *clip_routes(deps), *model_routes(deps), *legacy_routes(deps)]
