"""The Starlette app: thin routes over use cases resolved from the container, JSON errors, request ids,
access log, metrics and health. ``create_app_from_env`` is uvicorn's factory (``opusclip serve``)."""

from __future__ import annotations

import asyncio
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
from application.job_statistics import JobStatistics
from domain.jobs import PRIOR_MODEL_VERSION
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.health import ServiceInfo, health, health_detailed
from entrypoints.http.logging import configure_logging
from entrypoints.http.metrics import AppMetrics
from entrypoints.http.middleware import AccessLogMiddleware, RequestIdMiddleware
from entrypoints.http.openapi import document, openapi
from entrypoints.job_metrics import JobMetrics, refresh_forever
from entrypoints.lifecycle import Lifecycle, settle_heap


def create_app(container: Container, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The HTTP API over ``container``; ``routes`` are the API's own routes, next to health and metrics."""
    config = container[AppConfig]
    metrics = AppMetrics() if config.enable_metrics else None
    jobs = JobMetrics(metrics.registry) if metrics is not None else None

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
            settle_heap()
            refresher = None
            if jobs is not None and routes:
                refresher = asyncio.create_task(
                    refresh_forever(jobs, lambda: container[JobStatistics], config.health_check_interval)
                )
                # The API scores nothing: it reports the version workers are told to use.
                jobs.set_model(config.model_version or PRIOR_MODEL_VERSION)
            try:
                yield
            finally:
                if refresher is not None:
                    refresher.cancel()
                    await asyncio.gather(refresher, return_exceptions=True)
                await monitor.stop()
        finally:
            await lifecycle.close()

    all_routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/health/detailed", health_detailed, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
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
    app.state.service_info = ServiceInfo(version=service_version())
    app.state.openapi = document(service_version(), metrics=metrics is not None)
    app.state.metrics = metrics
    return app


def create_app_from_env() -> Starlette:
    """uvicorn's factory: settings from the environment, the production container."""
    from entrypoints.bootstrap import build_container  # heavy imports (torch, PyAV) only for the server
    from entrypoints.http.api import api_routes
    from entrypoints.http.studio import studio_routes

    config = AppConfig.from_env(os.environ)
    configure_logging(config.log_level, config.log_format)
    container = build_container(config)
    return create_app(container, [*api_routes(container), *studio_routes(config)])


def service_version() -> str:
    try:
        return importlib.metadata.version("video-opusclip")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"  # running from a checkout that was never pip-installed
