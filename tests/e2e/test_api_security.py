"""What the API refuses: requests without the right token or scope, URLs that point inside the network,
uploads over the limit, other users' ids, and more requests than a user's budget."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from adapters.media.synthetic import Scene, write_video
from domain.auth import Scope
from tests.e2e.service import (
    JWT_SECRET,
    Client,
    Proc,
    free_port,
    fresh_database,
    service_env,
    start_api,
    start_worker,
    token,
)

JOB = "00000000-0000-0000-0000-000000000000"
CLIP = "00000000-0000-0000-0000-000000000001"
# Every route that needs a token: (method, path, JSON body, scope it needs).
ROUTES = [
    ("POST", "/v1/jobs", {"url": "https://example.com/a.mp4"}, Scope.VIDEOS_WRITE),
    ("GET", "/v1/jobs", None, Scope.VIDEOS_READ),
    ("GET", f"/v1/jobs/{JOB}", None, Scope.VIDEOS_READ),
    ("DELETE", f"/v1/jobs/{JOB}", None, Scope.VIDEOS_WRITE),
    ("GET", f"/v1/jobs/{JOB}/events", None, Scope.VIDEOS_READ),
    ("GET", f"/v1/clips/{CLIP}", None, Scope.VIDEOS_READ),
    ("GET", f"/v1/clips/{CLIP}/media", None, Scope.VIDEOS_READ),
    ("GET", f"/v1/clips/{CLIP}/captions.srt", None, Scope.VIDEOS_READ),
    ("GET", f"/v1/clips/{CLIP}/captions.vtt", None, Scope.VIDEOS_READ),
    ("POST", f"/v1/clips/{CLIP}/feedback", {"rating": 1}, Scope.VIDEOS_READ),
    ("POST", "/video/process", {"video_url": "https://example.com/a.mp4"}, Scope.VIDEOS_WRITE),
    ("POST", "/video/train", None, Scope.MODELS_TRAIN),
    ("GET", "/v1/models", None, Scope.MODELS_TRAIN),
    ("POST", f"/v1/models/{JOB}/activate", None, Scope.MODELS_ADMIN),
    ("POST", "/v1/training-runs", None, Scope.MODELS_TRAIN),
    ("GET", f"/v1/training-runs/{JOB}", None, Scope.MODELS_TRAIN),
]


def _claims(**changes: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": "mallory",
        "scope": " ".join(Scope),
        "iss": "video-opusclip",
        "aud": "video-opusclip",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


BAD_CREDENTIALS = {
    "none": None,
    "basic": "Basic YWxpY2U6cHc=",
    "garbage": "Bearer not-a-token",
    "wrong secret": "Bearer " + jwt.encode(_claims(), "another-secret-" + "y" * 32, algorithm="HS256"),
    "expired": "Bearer "
    + jwt.encode(_claims(exp=datetime.now(UTC) - timedelta(hours=1)), JWT_SECRET, algorithm="HS256"),
    "wrong audience": "Bearer " + jwt.encode(_claims(aud="someone-else"), JWT_SECRET, algorithm="HS256"),
    "no subject": "Bearer " + jwt.encode(_claims(sub=None), JWT_SECRET, algorithm="HS256"),
    "alg none": "Bearer " + jwt.encode(_claims(), None, algorithm="none"),
}


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def api(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    root = tmp_path_factory.mktemp("security")
    # No FETCH_ALLOWED_NETWORKS: loopback is as forbidden as in production.
    proc = start_api(service_env(database, root, FETCH_ALLOWED_NETWORKS="", MAX_UPLOAD_BYTES="200000"), root)
    yield proc
    proc.stop()


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS), ids=str)
def test_every_route_refuses_a_missing_or_invalid_token(api: Proc, credential: str) -> None:
    header = BAD_CREDENTIALS[credential]
    for method, path, body, _ in ROUTES:
        headers = {} if header is None else {"Authorization": header}
        response = httpx.request(method, f"{api.url}{path}", json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.json()["request_id"] == response.headers["x-request-id"]


def test_a_valid_token_without_the_scope_is_forbidden(api: Proc) -> None:
    for method, path, body, scope in ROUTES:
        others = frozenset(Scope) - {scope}
        headers = {"Authorization": f"Bearer {token('alice', others)}"}
        response = httpx.request(method, f"{api.url}{path}", json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        granted = httpx.request(
            method,
            f"{api.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token('alice', {scope})}"},
        )
        assert granted.status_code not in (401, 403), (method, path, granted.text)


def test_another_users_ids_answer_as_missing_ones(api: Proc) -> None:
    alice, bob = Client(api.url, "alice"), Client(api.url, "bob")
    job = alice.submit_url("https://example.com/talk.mp4").json()
    assert bob.http.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert bob.http.delete(f"/v1/jobs/{job['id']}").status_code == 404
    assert alice.http.get(f"/v1/jobs/{job['id']}").status_code == 200


class Listener:
    """A TCP listener that counts every connection made to it."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def test_urls_that_point_inside_the_network_never_connect(api: Proc, database: str, tmp_path: Path) -> None:
    loopback, other = Listener("127.0.0.1"), Listener("127.0.0.2")
    worker = start_worker(service_env(database, tmp_path, FETCH_ALLOWED_NETWORKS=""), tmp_path)
    alice = Client(api.url, "alice")
    try:
        refused_now = [
            f"http://127.0.0.1:{loopback.port}/a.mp4",
            f"http://127.0.0.2:{other.port}/a.mp4",
            f"http://[::ffff:127.0.0.1]:{loopback.port}/a.mp4",
            f"http://[::1]:{loopback.port}/a.mp4",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/a.mp4",
            "http://100.64.0.1/a.mp4",
            "http://0.0.0.0/a.mp4",
            f"http://[64:ff9b::7f00:1]:{loopback.port}/a.mp4",
        ]
        for url in refused_now:
            response = alice.submit_url(url)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["error"]["code"] == "source_rejected"
        # Names are judged by what they resolve to, where the worker connects.
        for url in (
            f"http://localhost:{loopback.port}/a.mp4",
            f"http://2130706433:{loopback.port}/a.mp4",
            f"http://127.1:{loopback.port}/a.mp4",
        ):
            response = alice.submit_url(url)
            if response.status_code == 422:
                continue
            job = alice.wait(response.json()["id"], timeout=60)
            assert (job["status"], job["error"]["code"]) == ("failed", "source_rejected"), (url, job)
        assert (loopback.connections, other.connections) == (0, 0)
    finally:
        worker.stop()
        loopback.sock.close()
        other.sock.close()


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(api: Proc, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    write_video(big, [Scene(20.0, (90, 90, 200), motion=0.9)], size=(960, 540))
    assert big.stat().st_size > 200_000
    alice = Client(api.url, "alice")
    declared = alice.submit_file(big)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "media_too_large"

    def chunks() -> Iterator[bytes]:
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        data = big.read_bytes()
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = alice.http.post(
        "/v1/jobs", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b0undary"}
    )
    assert streamed.status_code == 413, streamed.text
    uploads = Path(api.log_path.parent / "media" / "uploads")
    assert not uploads.exists() or not any(uploads.iterdir()), "a refused upload stayed on disk"


def test_rate_limits_are_per_user_with_retry_after(database: str, tmp_path: Path) -> None:
    api = start_api(service_env(database, tmp_path, RATE_LIMIT_SUBMIT="3/minute"), tmp_path)
    try:
        alice, bob = Client(api.url, f"alice-{time.time_ns()}"), Client(api.url, f"bob-{time.time_ns()}")
        statuses = [alice.submit_url("https://example.com/a.mp4").status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429], statuses
        refused = alice.submit_url("https://example.com/a.mp4")
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert alice.http.get("/v1/jobs").status_code == 200, "reads have their own budget"
        assert bob.submit_url("https://example.com/a.mp4").status_code == 202, "budgets are per user"
    finally:
        api.stop()


def test_without_redis_reads_go_on_and_submissions_wait(database: str, tmp_path: Path) -> None:
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # accepts connections, never answers: a hung Redis
    port = blackhole.getsockname()[1]
    api = start_api(service_env(database, tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0"), tmp_path)
    try:
        alice = Client(api.url, "alice")
        for _ in range(3):
            started = time.monotonic()
            read = alice.http.get("/v1/jobs")
            read_seconds = time.monotonic() - started
            started = time.monotonic()
            submit = alice.submit_url("https://example.com/a.mp4")
            submit_seconds = time.monotonic() - started
            assert read.status_code == 200, read.text
            assert submit.status_code == 503 and submit.json()["error"]["code"] == "dependency_unavailable"
            assert submit.headers["retry-after"]
            # The limiter's own bound is 250 ms; a whole request on a busy 2-core machine gets some room.
            assert read_seconds < 1.5 and submit_seconds < 1.5, (read_seconds, submit_seconds)
    finally:
        api.stop()
        blackhole.close()


def test_closed_redis_port_too(database: str, tmp_path: Path) -> None:
    api = start_api(service_env(database, tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), tmp_path)
    try:
        alice = Client(api.url, "alice")
        assert alice.http.get("/v1/jobs").status_code == 200
        assert alice.submit_url("https://example.com/a.mp4").status_code == 503
    finally:
        api.stop()
