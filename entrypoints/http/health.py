"""``GET /health`` (liveness: it answers) and ``GET /health/detailed`` (dependencies, from memory)."""

from __future__ import annotations

import time

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from application.check_health import DependencyHealth, HealthMonitor


@attrs.frozen
class ServiceInfo:
    version: str
    started: float = attrs.field(factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return round(time.monotonic() - self.started, 3)


async def health(request: Request) -> JSONResponse:
    # Liveness never touches a dependency: restarting the process would not fix a dead database.
    info: ServiceInfo = request.app.state.service_info
    return JSONResponse({"status": "ok", "version": info.version, "uptime_seconds": info.uptime_seconds})


async def health_detailed(request: Request) -> JSONResponse:
    monitor: HealthMonitor = request.app.state.health_monitor
    info: ServiceInfo = request.app.state.service_info
    report = await monitor.report()
    body = {
        "status": report.status,
        "version": info.version,
        "uptime_seconds": info.uptime_seconds,
        "checked_at": report.checked_at,
        "dependencies": {d.name: _dependency(d) for d in report.dependencies},
    }
    return JSONResponse(body, status_code=200 if report.ready else 503)


def _dependency(dependency: DependencyHealth) -> dict[str, object]:
    return {
        "healthy": dependency.healthy,
        "required": dependency.required,
        "latency_ms": dependency.latency_ms,
        "error": dependency.error,
    }
