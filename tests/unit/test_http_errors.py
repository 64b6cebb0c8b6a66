from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from domain.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    InvalidOptions,
    MediaError,
    MediaLimitExceeded,
    NotFound,
    OpusClipError,
)
from entrypoints.http.app import create_app
from entrypoints.http.errors import read_json
from tests.unit.test_http_support import make_container

RAISED: dict[str, OpusClipError] = {}


async def raise_domain_error(request: Request) -> JSONResponse:
    raise RAISED["error"]


async def echo_json(request: Request) -> JSONResponse:
    return JSONResponse({"got": await read_json(request)})


@pytest.fixture
def client() -> TestClient:
    routes = [Route("/raise", raise_domain_error), Route("/echo", echo_json, methods=["POST"])]
    return TestClient(create_app(make_container(), routes), raise_server_exceptions=False)


def assert_error_body(response: Any, status: int, code: str) -> dict[str, object]:
    # Any: Starlette's TestClient answers with httpx's Response, or httpx2's from Starlette 1.10 on.
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    assert_error_body(client.get("/no/such/thing"), 404, "not_found")


def test_wrong_method_is_a_json_405_with_allow(client: TestClient) -> None:
    response = client.delete("/health")
    assert_error_body(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b""])
def test_malformed_json_is_a_422(client: TestClient, payload: bytes) -> None:
    body = assert_error_body(client.post("/echo", content=payload), 422, "invalid_input")
    assert "JSON" in str(body["error"])


def test_valid_json_passes_through(client: TestClient) -> None:
    assert client.post("/echo", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("bad field"), 422),
        (InvalidOptions("max < min"), 422),
        (MediaError("not a video"), 422),
        (MediaLimitExceeded("too long"), 413),
        (NotFound("no job 9"), 404),
        (Conflict("already cancelled"), 409),
        (DependencyUnavailable("database down"), 503),
        (OpusClipError("something expected"), 400),
    ],
)
def test_domain_errors_map_to_statuses_with_their_code_and_message(
    client: TestClient, error: OpusClipError, status: int
) -> None:
    RAISED["error"] = error
    body = assert_error_body(client.get("/raise"), status, error.code)
    assert body["error"] == {"code": error.code, "message": error.message}


def test_a_new_subclass_inherits_its_parents_status(client: TestClient) -> None:
    class JobGone(NotFound):
        code = "job_gone"

    RAISED["error"] = JobGone("expired")
    assert_error_body(client.get("/raise"), 404, "job_gone")
