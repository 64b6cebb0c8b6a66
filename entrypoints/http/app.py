"""The Starlette app: thin routes over use cases resolved from the container, JSON errors, request ids,
access log, metrics and health. ``create_app_from_env`` is uvicorn's factory (``opusclip serve``)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from collections.abc import AsyncIterator, Sequence

from lagom import Container
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from application.check_health import HealthMonitor
from application.config import AppConfig
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.health import ServiceInfo, health, health_detailed
from entrypoints.http.logging import configure_logging
from entrypoints.http.metrics import AppMetrics
from entrypoints.http.middleware import AccessLogMiddleware, RequestIdMiddleware
from entrypoints.lifecycle import Lifecycle


def create_app(container: Container, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The HTTP API over ``container``; ``routes`` are the API's own routes, next to health and metrics."""
    config = container[AppConfig]
    metrics = AppMetrics() if config.enable_metrics else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        lifecycle = container[Lifecycle]
        await lifecycle.start()
        try:
            # Resolved only now: the probes hold the engine and Redis pool that start() just opened.
            monitor = container[HealthMonitor]
            if metrics is not None:
                monitor.subscribe(metrics.observe_health)
            app.state.health_monitor = monitor
            if config.enable_health_checks:
                await monitor.start()
            try:
                yield
            finally:
                await monitor.stop()
        finally:
            await lifecycle.close()

    all_routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/health/detailed", health_detailed, methods=["GET"]),
        *routes,
    ]
    if metrics is not None:
        all_routes.append(Route("/metrics", metrics.endpoint, methods=["GET"]))

    app = Starlette(
        routes=all_routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AccessLogMiddleware, observer=metrics.observe_request if metrics else None),
        ],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.service_info = ServiceInfo(version=_version())
    app.state.metrics = metrics
    return app


def create_app_from_env() -> Starlette:
    """uvicorn's factory: settings from the environment, the production container."""
    from entrypoints.bootstrap import build_container  # heavy imports (torch, PyAV) only for the server

    config = AppConfig.from_env(os.environ)
    configure_logging(config.log_level, config.log_format)
    return create_app(build_container(config))


def _version() -> str:
    try:
        return importlib.metadata.version("video-opusclip")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"  # running from a checkout that was never pip-installed
