"""Real service processes for end-to-end tests: a fresh database, `opusclip serve`, `opusclip worker`s, a
media server on 127.0.0.1, and a client that speaks the API with a bearer token.

Each module gets its own PostgreSQL database (created, migrated with `opusclip migrate`, dropped), so the
queue's tables hold only that module's work.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx

from adapters.auth.jwt_authority import JwtTokenAuthority
from adapters.postgres.engine import asyncpg_url, libpq_url
from adapters.process_guard import die_with_parent
from domain.auth import Scope

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
JWT_SECRET = "e2e-secret-" + "x" * 32
STARTUP_SECONDS = 90.0  # a loose ceiling on a loaded 2-core machine; not a performance assertion
ALL_SCOPES = frozenset(Scope)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def opusclip(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("opusclip")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "entrypoints.cli"]
    return [*command, *args]


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(libpq_url(DATABASE_URL), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(libpq_url(database_url), timeout=10)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new database at the latest migration (applied by `opusclip migrate`), dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = asyncpg_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    try:
        done = subprocess.run(
            opusclip("migrate"), env={**os.environ, "DATABASE_URL": url}, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def service_env(database_url: str, root: Path, **overrides: str) -> dict[str, str]:
    """Settings shared by the API and every worker of one test: one database, one media folder."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "MEDIA_DIR": str(root / "media"),
        "MODEL_CACHE_DIR": str(root / "models"),
        "JWT_SECRET": JWT_SECRET,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "HEALTH_CHECK_INTERVAL": "1",
        # The media server of these tests listens on loopback; nothing else is allowed.
        "FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
        "RATE_LIMIT_DEFAULT": "100000/minute",
        "RATE_LIMIT_SUBMIT": "100000/minute",
        "MAX_WORKERS": "1",
        # Every test decodes for real: a cache shared with earlier tests (and runs) would skip the work
        # that fault tests must catch mid-way. Tests of the cache turn it on.
        "CACHE_ENABLED": "false",
        "JOB_RETRY_BASE_SECONDS": "0.5",
        "JOB_RETRY_MAX_SECONDS": "2",
        "JOB_LEASE_SECONDS": "4",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_STALLED_SECONDS": "4",
        "WORKER_SWEEP_SECONDS": "1",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "20",
        **overrides,
    }


@attrs.define
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; a process that ignores it is killed and the test fails."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"{self.name} ignored SIGTERM for {timeout} s:\n{self.output[-3000:]}"
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_STARTED: list[Proc] = []


@atexit.register
def _reap() -> None:
    """A service a failed fixture started and never stopped does not outlive the test run."""
    for proc in _STARTED:
        proc.kill()


def _start(name: str, command: list[str], env: dict[str, str], root: Path, health_url: str) -> Proc:
    log_path = root / f"{name}.log"
    with log_path.open("wb") as log:
        # Killed by the kernel if this test run itself is killed (PR_SET_PDEATHSIG).
        guard = functools.partial(die_with_parent, parent=os.getpid())
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=guard)
    proc = Proc(name, process, log_path, health_url.rsplit("/health", 1)[0])
    _STARTED.append(proc)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{proc.output[-3000:]}")
        try:
            if httpx.get(health_url, timeout=1.0).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(
        f"{name} did not answer {health_url} within {STARTUP_SECONDS} s:\n{proc.output[-3000:]}"
    )


def start_api(env: dict[str, str], root: Path, workers: int = 1) -> Proc:
    port = free_port()
    command = opusclip("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers))
    return _start(f"api-{port}", command, env, root, f"http://127.0.0.1:{port}/health")


def start_worker(env: dict[str, str], root: Path, concurrency: int = 1) -> Proc:
    port = free_port()
    command = opusclip(
        "worker",
        "--concurrency",
        str(concurrency),
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(port),
    )
    return _start(f"worker-{port}", command, env, root, f"http://127.0.0.1:{port}/health")


def token(subject: str, scopes: frozenset[Scope] = ALL_SCOPES, ttl: int | None = None) -> str:
    authority = JwtTokenAuthority(
        algorithm="HS256", issuer="video-opusclip", audience="video-opusclip", secret=JWT_SECRET
    )
    return authority.issue(subject, scopes, ttl)


class PatientTransport(httpx.HTTPTransport):
    """Sends a request again after a 503 (the service is busy, or a dependency blipped: it says try again
    shortly), as a patient client does. Only requests whose body can be sent again (none, or bytes such as
    JSON) are retried; an upload's answer is returned as it is."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + 60
        response = super().handle_request(request)
        while response.status_code == 503 and isinstance(request.stream, httpx.ByteStream):
            if time.monotonic() > deadline:
                break
            response.read()
            response.close()
            time.sleep(min(5.0, float(response.headers.get("retry-after") or 0.5)))
            response = super().handle_request(request)
        return response


@attrs.define
class Client:
    """The API as a client sees it, signed in as ``subject``. A ``patient`` client retries a 503 (see
    ``PatientTransport``); tests that expect a 503 use an impatient one."""

    base_url: str
    subject: str
    patient: bool = False
    http: httpx.Client = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token(self.subject)}"},
            timeout=30,
            transport=PatientTransport() if self.patient else None,
        )

    def submit_url(self, url: str, options: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return self.http.post("/v1/jobs", json={"url": url, "options": options or {}}, headers=headers)

    def submit_file(
        self, path: Path, options: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        import json

        with path.open("rb") as handle:
            return self.http.post(
                "/v1/jobs",
                files={"file": (path.name, handle, "video/mp4")},
                data={"options": json.dumps(options or {})},
                headers=headers,
            )

    def submitted(self, url: str, options: dict[str, Any] | None = None) -> str:
        """The id of a job made from ``url``; see ``_accepted``."""
        return self._accepted(lambda key: self.submit_url(url, options, **key))

    def submitted_file(self, path: Path, options: dict[str, Any] | None = None) -> str:
        """The id of a job made from an upload of ``path``; see ``_accepted``."""
        return self._accepted(lambda key: self.submit_file(path, options, **key))

    def _accepted(self, send: Callable[[dict[str, str]], httpx.Response]) -> str:
        """Submits as a well-behaved client does: a 503 (busy, or a dependency blipped: try again shortly)
        is sent again after its Retry-After, under one Idempotency-Key, so a retry never makes a second job.
        Any other answer than 202 fails the test and shows the response."""
        key = {"Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + 60
        response = send(key)
        while response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(min(5.0, float(response.headers.get("retry-after") or 0.5)))
            response = send(key)
        assert response.status_code == 202, f"{response.status_code}: {response.text}"
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self, job_id: str, timeout: float = 180.0, until: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Polls until the job ends (or ``until`` holds); fails with the last state seen."""
        done = until or (lambda job: job["status"] in ("succeeded", "failed", "cancelled"))
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        while not done(job):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {job['status']}/{job['stage']} after {timeout} s: {job}"
                )
            time.sleep(0.25)
            job = self.job(job_id)
        return job


class MediaServer:
    """Serves files from a folder on 127.0.0.1 and counts the connections it accepts."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.connections = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(server.folder), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                accepted = super().get_request()
                server.connections += 1
                return accepted

        self._server = Server((host, 0), Handler)
        self.port = self._server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it runs nothing.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def descendants(pid: int) -> set[int]:
    """Every process under ``pid`` (children of children too), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            ppid = int((entry / "stat").read_text().split(") ", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
