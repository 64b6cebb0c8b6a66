"""Health of the service's dependencies: ``CheckHealth`` (one round of probes) and ``HealthMonitor``
(rounds in the background, so a health endpoint answers from memory instead of waiting on a dead database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

import attrs

from domain.ports import DependencyProbe

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
HealthObserver = Callable[["HealthReport"], None]

_MAX_ERROR_CHARS = 300
log = logging.getLogger(__name__)


@attrs.frozen
class DependencyProbes:
    """The probes to run, wrapped so a container can hand them out by type."""

    probes: tuple[DependencyProbe, ...] = ()


@attrs.frozen
class DependencyHealth:
    name: str
    healthy: bool
    required: bool
    latency_ms: float
    error: str | None = None


@attrs.frozen
class HealthReport:
    """One round of probes. ``ready`` is false only when a required dependency is down."""

    status: HealthStatus
    dependencies: tuple[DependencyHealth, ...]
    checked_at: float  # unix time, for clients to judge freshness

    @property
    def ready(self) -> bool:
        return self.status != "unhealthy"

    @classmethod
    def of(cls, dependencies: tuple[DependencyHealth, ...], checked_at: float) -> HealthReport:
        if any(d.required and not d.healthy for d in dependencies):
            status: HealthStatus = "unhealthy"
        elif any(not d.healthy for d in dependencies):
            status = "degraded"
        else:
            status = "healthy"
        return cls(status, dependencies, checked_at)


@attrs.frozen
class CheckHealth:
    """Probes every dependency concurrently; a probe slower than ``timeout`` seconds counts as down."""

    probes: DependencyProbes
    timeout: float = 2.0

    async def __call__(self) -> HealthReport:
        results = await asyncio.gather(*(self._probe(probe) for probe in self.probes.probes))
        return HealthReport.of(tuple(results), checked_at=time.time())

    async def _probe(self, probe: DependencyProbe) -> DependencyHealth:
        started = time.perf_counter()
        error: str | None = None
        try:
            await asyncio.wait_for(probe.check(), self.timeout)
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except Exception as failure:  # any failure means "down"; its text goes into the report
            error = f"{type(failure).__name__}: {failure}"[:_MAX_ERROR_CHARS]
        latency_ms = (time.perf_counter() - started) * 1000.0
        return DependencyHealth(probe.name, error is None, probe.required, round(latency_ms, 2), error)


@attrs.define
class HealthMonitor:
    """Runs ``check`` every ``interval`` seconds in a background task and keeps the latest report.

    Observers (e.g. Prometheus gauges in the HTTP entrypoint) are told about every report.
    """

    check: CheckHealth
    interval: float = 10.0
    _observers: list[HealthObserver] = attrs.field(factory=list, init=False)
    _latest: HealthReport | None = attrs.field(default=None, init=False)
    _task: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    @property
    def latest(self) -> HealthReport | None:
        return self._latest

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscribe(self, observer: HealthObserver) -> None:
        self._observers.append(observer)

    async def refresh(self) -> HealthReport:
        """Run one round now, store it and tell the observers."""
        report = await self.check()
        self._latest = report
        for observer in self._observers:
            try:
                observer(report)
            except Exception:  # a broken observer must not stop health checks
                log.exception("health observer %r failed", observer)
        return report

    async def report(self) -> HealthReport:
        """The background task's latest report; one fresh round when there is none yet or no task runs."""
        if self.running and self._latest is not None:
            return self._latest
        async with self._lock:
            # Requests that queued on the lock while one round ran share its answer.
            if self.running and self._latest is not None:
                return self._latest
            return await self.refresh()

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # one bad round must not end the loop; the next one may succeed
                log.exception("health check round failed")
            await asyncio.sleep(self.interval)
