from __future__ import annotations

import asyncio

from lagom import Container

from application.check_health import CheckHealth, DependencyProbes, HealthMonitor, HealthReport
from tests.unit.fakes import FakeProbe


def check_of(*probes: FakeProbe, timeout: float = 1.0) -> CheckHealth:
    return CheckHealth(DependencyProbes(probes), timeout=timeout)


async def test_all_up_is_healthy_and_lists_every_dependency() -> None:
    report = await check_of(FakeProbe("postgres", True), FakeProbe("redis", False))()
    assert report.status == "healthy"
    assert report.ready
    assert [(d.name, d.healthy, d.required, d.error) for d in report.dependencies] == [
        ("postgres", True, True, None),
        ("redis", True, False, None),
    ]
    assert all(d.latency_ms >= 0 for d in report.dependencies)


async def test_optional_dependency_down_is_degraded_but_ready() -> None:
    report = await check_of(
        FakeProbe("postgres", True), FakeProbe("redis", False, ConnectionRefusedError("refused"))
    )()
    assert report.status == "degraded"
    assert report.ready
    redis = report.dependencies[1]
    assert not redis.healthy
    assert redis.error is not None and "ConnectionRefusedError" in redis.error and "refused" in redis.error


async def test_required_dependency_down_is_unhealthy() -> None:
    report = await check_of(FakeProbe("postgres", True, OSError("no route")), FakeProbe("redis", False))()
    assert report.status == "unhealthy"
    assert not report.ready


async def test_a_hanging_probe_times_out_without_holding_up_the_others() -> None:
    hanging = FakeProbe("postgres", True, hang=True)
    report = await check_of(hanging, FakeProbe("redis", False), timeout=0.05)()
    postgres, redis = report.dependencies
    assert not postgres.healthy and postgres.error is not None and "0.05" in postgres.error
    assert redis.healthy
    assert report.status == "unhealthy"


async def test_long_error_text_is_truncated() -> None:
    report = await check_of(FakeProbe("postgres", True, RuntimeError("x" * 5000)))()
    error = report.dependencies[0].error
    assert error is not None and len(error) <= 300


async def test_no_probes_is_healthy() -> None:
    assert (await check_of()()).status == "healthy"


async def test_monitor_without_task_checks_on_demand_and_notifies_observers() -> None:
    probe = FakeProbe("postgres", True)
    monitor = HealthMonitor(check_of(probe), interval=60)
    seen: list[HealthReport] = []
    monitor.subscribe(seen.append)
    assert monitor.latest is None
    first = await monitor.report()
    second = await monitor.report()
    assert probe.calls == 2  # not running: every report is fresh
    assert seen == [first, second]
    assert monitor.latest is second


async def test_running_monitor_serves_its_latest_report_and_refreshes_it() -> None:
    probe = FakeProbe("redis", False)
    monitor = HealthMonitor(check_of(probe), interval=0.01)
    refreshed = asyncio.Event()
    monitor.subscribe(lambda _: refreshed.set() if probe.calls >= 3 else None)
    await monitor.start()
    try:
        await asyncio.wait_for(refreshed.wait(), 5)
        calls = probe.calls
        report = await monitor.report()
        assert report is monitor.latest
        assert probe.calls - calls <= 1  # served from memory, not by a new round of its own
        probe.failure = ConnectionError("gone")
        refreshed.clear()
        monitor.subscribe(lambda r: refreshed.set() if r.status == "degraded" else None)
        await asyncio.wait_for(refreshed.wait(), 5)
        assert (await monitor.report()).status == "degraded"
    finally:
        await monitor.stop()
    assert not monitor.running
    stopped_at = probe.calls
    await asyncio.sleep(0.05)
    assert probe.calls == stopped_at


async def test_a_failing_observer_does_not_stop_the_monitor() -> None:
    monitor = HealthMonitor(check_of(FakeProbe("redis", False)), interval=60)

    def broken(_: HealthReport) -> None:
        raise ValueError("observer bug")

    seen: list[HealthReport] = []
    monitor.subscribe(broken)
    monitor.subscribe(seen.append)
    await monitor.report()
    assert len(seen) == 1


def test_lagom_wires_check_health_from_the_probes_wrapper() -> None:
    container = Container()
    probes = DependencyProbes((FakeProbe("postgres", True),))
    container[DependencyProbes] = probes
    check = container[CheckHealth]
    assert check.probes is probes
    assert 0 < check.timeout < 5  # defaults survive auto-wiring; under the 5 s health endpoint budget
    monitor = container[HealthMonitor]
    assert monitor.check.probes is probes


async def test_monitor_keeps_running_after_a_round_that_raises() -> None:
    probe = FakeProbe("redis", False)
    rounds = 0

    class Flaky(CheckHealth):
        async def __call__(self) -> HealthReport:
            nonlocal rounds
            rounds += 1
            if rounds == 1:
                raise RuntimeError("bug in a probe wrapper")
            return await super().__call__()

    monitor = HealthMonitor(Flaky(DependencyProbes((probe,))), interval=0.01)
    second_round = asyncio.Event()
    monitor.subscribe(lambda _: second_round.set())
    await monitor.start()
    try:
        await asyncio.wait_for(second_round.wait(), 5)
        assert monitor.running
        assert rounds >= 2
    finally:
        await monitor.stop()
