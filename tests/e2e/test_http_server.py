"""A real ``opusclip serve`` (uvicorn) process over HTTP, against the local Postgres and Redis.

TEST_DATABASE_URL / TEST_REDIS_URL name the services (the Makefile's defaults are used when unset); the
healthy-server test fails loudly, with the server's health body, when they are not reachable.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from tests.e2e.service import DATABASE_URL, Proc, free_port, service_env, start_api

# uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it caught so that supervisors see the
# signal: exiting "by SIGTERM" after "Application shutdown complete" is the clean outcome.
CLEAN_EXIT = (0, -signal.SIGTERM)


@attrs.frozen
class Server:
    proc: Proc

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def output(self) -> str:
        return self.proc.output

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, as an orchestrator would; fails unless the server shut down gracefully and promptly."""
        status = self.proc.stop(timeout)
        assert status in CLEAN_EXIT, f"exit status {status}:\n{self.output[-3000:]}"
        assert "Application shutdown complete" in self.output, self.output[-3000:]
        assert "Traceback" not in self.output, self.output[-3000:]


def start_server(tmp_path: Path, workers: int = 1, **env: str) -> Server:
    # The shared test database: these tests read health and metrics only, so it needs no migration.
    environ = {**service_env(DATABASE_URL, tmp_path), "CACHE_ENABLED": "true", **env}
    return Server(start_api(environ, tmp_path, workers))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a hung database, not a refused one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_liveness(server: Server) -> None:
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["uptime_seconds"] >= 0 and body["version"]


def test_detailed_health_with_real_postgres_and_redis(server: Server) -> None:
    response = httpx.get(f"{server.url}/health/detailed", timeout=10)
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "healthy", body
    for name in ("postgres", "redis"):
        dependency = body["dependencies"][name]
        assert dependency["healthy"] is True and dependency["error"] is None
        assert dependency["latency_ms"] >= 0
    assert body["dependencies"]["postgres"]["required"] is True
    assert body["dependencies"]["redis"]["required"] is False


def test_request_id_is_echoed_and_errors_are_json(server: Server) -> None:
    echoed = httpx.get(f"{server.url}/health", headers={"X-Request-ID": "e2e-trace.1"})
    assert echoed.headers["x-request-id"] == "e2e-trace.1"
    missing = httpx.get(f"{server.url}/definitely/not/here", headers={"X-Request-ID": "e2e-404"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "e2e-404"
    assert missing.json() == {
        "error": {"code": "not_found", "message": missing.json()["error"]["message"]},
        "request_id": "e2e-404",
    }
    generated = httpx.get(f"{server.url}/health").headers["x-request-id"]
    assert len(generated) == 32


def test_metrics_show_the_request_histogram_and_dependency_gauges(server: Server) -> None:
    httpx.get(f"{server.url}/health")
    httpx.get(f"{server.url}/health/detailed", timeout=10)
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        'opusclip_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health",status="200"}'
        in text
    )
    assert 'opusclip_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'opusclip_dependency_up{dependency="postgres"} 1.0' in text
    assert "process_resident_memory_bytes" in text


def test_access_log_is_json_with_request_id_and_route(server: Server) -> None:
    httpx.get(f"{server.url}/health", headers={"X-Request-ID": "log-me"})
    deadline = time.monotonic() + 10
    while "log-me" not in server.output and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in server.output.splitlines() if '"log-me"' in line and "http.request" in line)
    assert '"route": "/health"' in line and '"status": 200' in line and '"duration_ms"' in line


@pytest.mark.parametrize("postgres", ["closed", "silent"])
def test_unreachable_postgres_is_503_within_5_seconds_while_liveness_stays_up(
    tmp_path: Path, postgres: str, silent_port: int
) -> None:
    port = free_port() if postgres == "closed" else silent_port
    server = start_server(tmp_path, DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test")
    try:
        started = time.monotonic()
        response = httpx.get(f"{server.url}/health/detailed", timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert elapsed < 5.0  # the bound
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["dependencies"]["postgres"]["healthy"] is False
        assert body["dependencies"]["postgres"]["error"]
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        server.stop()


def test_unreachable_redis_is_degraded_but_200_and_shutdown_is_graceful(tmp_path: Path) -> None:
    server = start_server(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = httpx.get(f"{server.url}/health/detailed", timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "degraded"
        assert body["dependencies"]["redis"]["healthy"] is False
        assert body["dependencies"]["postgres"]["healthy"] is True
    finally:
        server.stop()  # asserts a graceful shutdown


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    server = start_server(tmp_path, workers=2)
    try:
        # The sum below means something only if both processes served some requests. The kernel hands each
        # new connection to whichever process accepts first, so on a busy machine one may take a long run.
        sent, served_by = 0, set()
        while len(served_by) < 2 and sent < 400:
            for _ in range(20):  # a new connection each
                httpx.get(f"{server.url}/health/detailed", headers={"Connection": "close"})
            sent += 20
            served_by = {
                json.loads(line)["pid"]
                for line in server.output.splitlines()
                if '"http.request"' in line and '"/health/detailed"' in line
            }
        assert len(served_by) == 2, f"one process served all {sent} requests: {served_by}"
        for _ in range(3):  # whichever worker answers, it reports every worker's requests
            text = httpx.get(f"{server.url}/metrics", headers={"Connection": "close"}).text
            line = next(
                line
                for line in text.splitlines()
                if line.startswith("opusclip_http_requests_total{")
                and 'route="/health/detailed"' in line
                and 'method="GET"' in line
            )
            assert float(line.rsplit(" ", 1)[1]) == float(sent), line
    finally:
        server.stop()
