"""Prometheus metrics for one app: HTTP requests, dependency health, plus the process-wide default registry.

Each app owns a CollectorRegistry, so building several apps in one process (tests) never collides; the
default registry still carries process/platform/GC collectors and adapter counters (cache errors), and
``/metrics`` renders both.

Under ``opusclip serve --workers N`` each worker is a process of its own; ``serve`` then sets
PROMETHEUS_MULTIPROC_DIR, every value is kept in a file there, and ``/metrics`` sums all workers (process
collectors are per process and are left out in that mode, as prometheus_client documents).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Metric, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from application.check_health import HealthReport

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _ProcessWide(Collector):
    """The default registry seen through this app's registry, so one exposition carries both."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class AppMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_ProcessWide())
        self.requests = Counter(
            "opusclip_http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "opusclip_http_request_duration_seconds",
            "HTTP request duration by method, route template and status",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "opusclip_dependency_up",
            "1 when the dependency's last health check passed",
            ["dependency"],
            registry=self.registry,
            multiprocess_mode="mostrecent",  # every worker checks; the latest check is the answer
        )
        self.dependency_seconds = Gauge(
            "opusclip_dependency_check_seconds",
            "How long the dependency's last health check took",
            ["dependency"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = {"method": method, "route": route, "status": str(status)}
        self.requests.labels(**labels).inc()
        self.duration.labels(**labels).observe(seconds)

    def observe_health(self, report: HealthReport) -> None:
        for dependency in report.dependencies:
            self.dependency_up.labels(dependency.name).set(1.0 if dependency.healthy else 0.0)
            self.dependency_seconds.labels(dependency.name).set(dependency.latency_ms / 1000.0)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type, in the format the scraper's Accept header asks for."""
        encoder, content_type = choose_encoder(accept or "")
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return encoder(registry), content_type

    async def endpoint(self, request: Request) -> Response:
        body, content_type = self.render(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})
