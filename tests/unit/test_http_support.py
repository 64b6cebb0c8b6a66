"""Helpers, no tests, for the test_http_* modules: a test container with fake dependency probes."""

from __future__ import annotations

import attrs
from lagom import Container

from application.check_health import CheckHealth, DependencyProbes, HealthMonitor
from application.config import AppConfig
from entrypoints.lifecycle import Lifecycle
from tests.unit.fakes import FakeProbe


@attrs.define
class ResourceLog:
    events: list[str] = attrs.Factory(list)


def make_container(
    *probes: FakeProbe,
    probe_timeout: float = 0.5,
    interval: float = 60.0,
    resources: ResourceLog | None = None,
    enable_metrics: bool = True,
    enable_health_checks: bool = True,
) -> Container:
    container = Container()
    container[AppConfig] = AppConfig(enable_metrics=enable_metrics, enable_health_checks=enable_health_checks)
    lifecycle = Lifecycle()
    if resources is not None:
        events = resources.events

        def open_thing() -> str:
            events.append("open")
            return "thing"

        lifecycle.add("thing", open_thing, lambda _: events.append("close"))
    container[Lifecycle] = lifecycle
    checks = CheckHealth(DependencyProbes(probes), timeout=probe_timeout)
    container[HealthMonitor] = HealthMonitor(checks, interval=interval)
    return container
