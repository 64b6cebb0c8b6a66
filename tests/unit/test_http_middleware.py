from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import pytest
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.unit.test_http_support import make_container

log = structlog.get_logger("test")


async def job(request: Request) -> JSONResponse:
    log.info("inside.handler")
    return JSONResponse({"id": request.path_params["id"]})


async def crash(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


@pytest.fixture
def client() -> TestClient:
    routes = [Route("/v1/jobs/{id}", job), Route("/crash", crash)]
    return TestClient(create_app(make_container(), routes), raise_server_exceptions=False)


@pytest.mark.parametrize("incoming", ["abc", "req-1.2_3", "A" * 128])
def test_sane_incoming_request_id_is_echoed(client: TestClient, incoming: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["", "A" * 129, "has space", "semi;colon", "ünï", "a\tb"])
def test_insane_request_id_is_replaced_by_a_fresh_one(client: TestClient, incoming: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": incoming.encode("utf-8")})
    generated = response.headers["X-Request-ID"]
    assert generated != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_every_request_gets_its_own_id(client: TestClient) -> None:
    ids = {client.get("/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("path", ["/nowhere", "/crash"])
def test_error_responses_carry_the_request_id_too(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"X-Request-ID": "trace-me"})
    assert response.status_code >= 400
    assert response.headers["X-Request-ID"] == "trace-me"
    assert response.json()["request_id"] == "trace-me"


def test_access_log_has_route_template_status_and_duration(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get("/v1/jobs/42", headers={"X-Request-ID": "r-1"})
        client.get("/nowhere/really")
    access = [entry for entry in logs if entry["event"] == "http.request"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/v1/jobs/{id}", 200),
        ("GET", "<unmatched>", 404),
    ]
    assert all(isinstance(a["duration_ms"], float) and a["duration_ms"] >= 0 for a in access)


def test_request_id_is_bound_into_log_context_during_the_request(client: TestClient) -> None:
    # capture_logs does not run merge_contextvars; read the context the handler's log call sees instead.
    seen: list[dict[str, object]] = []

    def capture(_: object, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        seen.append({**structlog.contextvars.get_contextvars(), **event})
        raise structlog.DropEvent

    structlog.configure(processors=[capture])
    try:
        client.get("/v1/jobs/7", headers={"X-Request-ID": "ctx-1"})
    finally:
        structlog.reset_defaults()
    inside = [entry for entry in seen if entry["event"] == "inside.handler"]
    assert inside and inside[0]["request_id"] == "ctx-1"
    assert "request_id" not in structlog.contextvars.get_contextvars()  # nothing leaks after the request


def test_unhandled_exception_is_logged_with_traceback_not_sent_to_client(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = client.get("/crash")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == {"code": "internal_error", "message": "internal server error"}
    assert "boom" not in response.text and "Traceback" not in response.text
    errors = [entry for entry in logs if entry["event"] == "http.unhandled_error"]
    assert errors and errors[0].get("exc_info") is True
    access = [entry for entry in logs if entry["event"] == "http.request"]
    assert access[-1]["status"] == 500 and access[-1]["route"] == "/crash"
