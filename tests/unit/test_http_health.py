from __future__ import annotations

import time

from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.unit.fakes import FakeProbe
from tests.unit.test_http_support import ResourceLog, make_container


def test_liveness_answers_without_starting_anything() -> None:
    resources = ResourceLog()
    probe = FakeProbe("postgres", True, hang=True)  # a dependency check here would hang
    client = TestClient(create_app(make_container(probe, resources=resources)))
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["version"], str) and body["version"]
    assert body["uptime_seconds"] >= 0
    assert resources.events == []


def test_lifespan_opens_and_closes_the_lifecycle() -> None:
    resources = ResourceLog()
    with TestClient(create_app(make_container(resources=resources))) as client:
        assert resources.events == ["open"]
        assert client.get("/health").status_code == 200
    assert resources.events == ["open", "close"]


def test_detailed_health_lists_dependencies_and_is_200_when_all_up() -> None:
    probes = (FakeProbe("postgres", True), FakeProbe("redis", False))
    with TestClient(create_app(make_container(*probes))) as client:
        response = client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["dependencies"]) == {"postgres", "redis"}
    postgres = body["dependencies"]["postgres"]
    assert postgres["healthy"] is True and postgres["required"] is True and postgres["error"] is None
    assert postgres["latency_ms"] >= 0


def test_only_optional_redis_down_is_200_degraded() -> None:
    probes = (FakeProbe("postgres", True), FakeProbe("redis", False, ConnectionRefusedError("refused")))
    with TestClient(create_app(make_container(*probes))) as client:
        response = client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["redis"]["healthy"] is False
    assert "refused" in body["dependencies"]["redis"]["error"]


def test_required_dependency_hanging_is_503_within_the_probe_timeout() -> None:
    probes = (FakeProbe("postgres", True, hang=True), FakeProbe("redis", False))
    app = create_app(make_container(*probes, probe_timeout=0.2, enable_health_checks=False))
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.get("/health/detailed")
        elapsed = time.monotonic() - started
        assert client.get("/health").status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["dependencies"]["postgres"]["healthy"] is False
    assert body["dependencies"]["redis"]["healthy"] is True
    assert elapsed < 5.0  # the bound for an unreachable database


def test_metrics_expose_requests_histogram_and_dependency_gauges() -> None:
    probes = (FakeProbe("postgres", True), FakeProbe("redis", False, OSError("down")))
    with TestClient(create_app(make_container(*probes))) as client:
        client.get("/health/detailed")
        client.get("/nope")
        text = client.get("/metrics").text
    assert 'opusclip_http_requests_total{method="GET",route="/health/detailed",status="200"} 1.0' in text
    assert 'opusclip_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert (
        'opusclip_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health/detailed"'
        in text
    )
    assert 'opusclip_dependency_up{dependency="postgres"} 1.0' in text
    assert 'opusclip_dependency_up{dependency="redis"} 0.0' in text
    assert 'opusclip_dependency_check_seconds{dependency="redis"}' in text
    assert "process_cpu_seconds_total" in text or "python_info" in text


def test_several_apps_in_one_process_keep_separate_counts() -> None:
    first = TestClient(create_app(make_container()))
    second = TestClient(create_app(make_container()))
    for _ in range(3):
        first.get("/health")
    second.get("/health")
    line = 'opusclip_http_requests_total{method="GET",route="/health",status="200"}'
    assert f"{line} 3.0" in first.get("/metrics").text
    assert f"{line} 1.0" in second.get("/metrics").text


def test_metrics_can_be_switched_off() -> None:
    client = TestClient(create_app(make_container(enable_metrics=False)))
    assert client.get("/metrics").status_code == 404
