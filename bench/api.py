"""Throughput and latency of ``GET /v1/jobs/{id}`` against a real database, beside a bare Starlette endpoint.

    python bench/api.py [--seconds 10] [--warmup 1] [--connections 64] [--rounds 2] [--generator wrk] [--json]

Creates a scratch database (migrated by `opusclip migrate`), starts `opusclip serve --workers 1` on it with
Redis db 13 and a rate limit that never refuses, submits one job (no worker runs, so it stays queued) and
reads it back; then starts bench/bare_app.py, which answers the same path with the same JSON and nothing
else, under the same uvicorn options. A load generator — wrk (one thread, keep-alive connections, closed
loop), or with ``--generator httpx`` an httpx client in its own process — drives each server for the same
time, alternating bare, real,
bare, real; each keeps its better round. Everything it started is stopped, and the database dropped, at the
end, on Ctrl-C, SIGTERM or an error (a round under way finishes first). About a minute with the defaults.

Beside rps and latency it prints the CPU each server and the generator spent per request: where the generator
needs more than the server it drives, the generator set the pace (it says so), and the ratio of server CPU per
request is the fairer comparison. The real server logs every request at info, as JSON, to
bench/out/api-real.log, as in production. Targets: real rps >= 15% of bare; real p99 < 50 ms at 64
connections; no errors (a non-200 answer or a failed request) in any round.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import httpx
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
REAL_LOG = OUT / "api-real.log"
BARE_LOG = OUT / "api-bare.log"
sys.path.insert(0, str(ROOT))

from tests.e2e.service import free_port, fresh_database, opusclip, service_env, token  # noqa: E402  # after the sys.path line, so the bench runs from a checkout

TARGET_RATIO = 0.15
TARGET_P99_MS = 50.0
SATURATED = 0.9  # of one core: past this the generator, not the server, may set the pace
RATE_LIMIT = "1000000/minute"  # never refuses, yet every request still pays its round trip to Redis
STARTUP_SECONDS = 60.0
STOP_SECONDS = 35.0  # past uvicorn's 30 s graceful shutdown
# What `opusclip serve` passes to uvicorn.run (entrypoints/serve.py), as uvicorn's command line.
UVICORN_OPTIONS = [
    "--workers",
    "1",
    "--no-access-log",
    "--proxy-headers",
    "--timeout-graceful-shutdown",
    "30",
]


@attrs.frozen
class Measurement:
    requests: int  # answered 200
    errors: Mapping[str, int]  # status code or exception name -> count
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_seconds: float
    generator_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu(self) -> float:
        return self.server_cpu_seconds / self.seconds

    @property
    def generator_cpu(self) -> float:
        return self.generator_cpu_seconds / self.seconds

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu_seconds / max(self.requests, 1) * 1e6

    @property
    def generator_us_per_request(self) -> float:
        return self.generator_cpu_seconds / max(self.requests, 1) * 1e6

    @property
    def generator_bound(self) -> bool:
        """Where the generator needs more CPU per request than the server, sharing cores, it sets the pace."""
        return self.generator_cpu >= SATURATED or self.generator_us_per_request >= self.server_us_per_request

    def as_json(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "errors": dict(self.errors),
            "seconds": round(self.seconds, 2),
            "server_cpu": round(self.server_cpu, 3),
            "server_us_per_request": round(self.server_us_per_request, 1),
            "generator_cpu": round(self.generator_cpu, 3),
            "generator_us_per_request": round(self.generator_us_per_request, 1),
            "generator_bound": self.generator_bound,
        }


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def _drive(
    clients: list[httpx.AsyncClient], path: str, seconds: float
) -> tuple[list[float], collections.Counter[str]]:
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    deadline = time.perf_counter() + seconds

    async def one_client(client: httpx.AsyncClient) -> None:
        request = client.build_request("GET", path)  # sent again and again: building it costs ~0.5 ms
        while (start := time.perf_counter()) < deadline:
            try:
                response = await client.send(request)
            except httpx.HTTPError as error:
                errors[type(error).__name__] += 1
                continue
            if response.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[str(response.status_code)] += 1

    await asyncio.gather(*(one_client(client) for client in clients))
    return latencies, errors


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def measure_wrk(
    base_url: str, path: str, bearer: str, connections: int, warmup: float, seconds: float, server_pid: int
) -> dict[str, Any]:
    """One round with wrk (C, one thread): it needs a fraction of the CPU per request an httpx client does,
    so it can drive even the bare endpoint to its limit on a small machine."""
    server = psutil.Process(server_pid)
    url = f"{base_url}{path}"
    base = ["wrk", "-t", "1", "-c", str(connections), "-H", f"Authorization: Bearer {bearer}", "--latency"]
    if warmup > 0:
        subprocess.run([*base, "-d", f"{max(1, round(warmup))}s", url], capture_output=True, check=True)
    server_before = sum(server.cpu_times()[:2])
    start = time.perf_counter()
    process = psutil.Popen(
        [*base, "-d", f"{max(1, round(seconds))}s", url], stdout=subprocess.PIPE, text=True
    )
    generator_cpu = 0.0
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            generator_cpu = sum(process.cpu_times()[:2])
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    elapsed = time.perf_counter() - start
    server_cpu = sum(server.cpu_times()[:2]) - server_before
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors: collections.Counter[str] = collections.Counter()
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors["non-2xx"] = int(non_2xx.group(1))
    if socket_errors := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        for kind, count in zip(("connect", "read", "write", "timeout"), socket_errors.groups(), strict=True):
            if int(count):
                errors[kind] += int(count)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, flags=re.M))
    if set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"wrk printed no latency distribution:\n{output}")
    return {
        "requests": total - errors["non-2xx"],
        "errors": dict(errors),
        "seconds": elapsed,
        "p50_ms": _wrk_ms(percentiles["50"]),
        "p99_ms": _wrk_ms(percentiles["99"]),
        "server_cpu_seconds": server_cpu,
        "generator_cpu_seconds": generator_cpu,
    }


def measure(
    base_url: str, path: str, bearer: str, connections: int, warmup: float, seconds: float, server_pid: int
) -> dict[str, Any]:
    """One round against one server; runs in the generator process, so returns plain data."""
    server = psutil.Process(server_pid)

    async def run() -> dict[str, Any]:
        # A client per connection: one pool shared by 64 tasks spends more time scanning its waiting
        # requests than sending them (55 rps instead of 400 against the bare endpoint, here).
        tls = ssl.create_default_context()  # unused on http://, but each client would build its own
        headers = {"Authorization": f"Bearer {bearer}"}
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=base_url,
                        headers=headers,
                        limits=httpx.Limits(max_connections=1),
                        timeout=10,
                        verify=tls,
                    )
                )
                for _ in range(connections)
            ]
            await _drive(clients, path, warmup)
            server_before = sum(server.cpu_times()[:2])
            cpu_before, start = time.process_time(), time.perf_counter()
            latencies, errors = await _drive(clients, path, seconds)
            elapsed = time.perf_counter() - start
            generator_cpu = time.process_time() - cpu_before
            server_cpu = sum(server.cpu_times()[:2]) - server_before
        latencies.sort()
        return {
            "requests": len(latencies),
            "errors": dict(errors),
            "seconds": elapsed,
            "p50_ms": _percentile(latencies, 0.50) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000,
            "server_cpu_seconds": server_cpu,
            "generator_cpu_seconds": generator_cpu,
        }

    return asyncio.run(run())


@attrs.frozen
class Server:
    url: str
    pid: int
    log_path: Path


@contextlib.contextmanager
def serving(command: list[str], env: Mapping[str, str], port: int, log_path: Path) -> Iterator[Server]:
    """A server process, answering /health within STARTUP_SECONDS; SIGTERM (then SIGKILL) on the way out."""
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{' '.join(command[:3])}... did not start (see {log_path}):\n{tail}")
            time.sleep(0.2)
        yield Server(url, process.pid, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def submit_job(url: str, bearer: str) -> tuple[str, str]:
    """The id and the ``GET /v1/jobs/{id}`` body of a new job, queued for a worker that never comes."""
    headers = {"Authorization": f"Bearer {bearer}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        submitted = client.post("/v1/jobs", json={"url": "https://example.com/talk.mp4"})
        if submitted.status_code != 202:
            raise SystemExit(f"POST /v1/jobs answered {submitted.status_code}: {submitted.text}")
        job_id = str(submitted.json()["id"])
        read = client.get(f"/v1/jobs/{job_id}")
        if read.status_code != 200:
            raise SystemExit(f"GET /v1/jobs/{job_id} answered {read.status_code}: {read.text}")
        return job_id, read.text


def reads_without_limit(log_path: Path) -> tuple[int, int]:
    """From the real server's log: how many reads the limiter let through undecided, of how many reads.

    The limiter gives Redis 200 ms; past that a read goes on without its decision, and without paying for it.
    """
    undecided = reads = 0
    for line in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            undecided += entry.get("event") == "rate_limit.unavailable"
            reads += entry.get("event") == "http.request" and entry.get("route") == "/v1/jobs/{job_id}"
    return undecided, reads


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds main's ExitStack: servers stopped, database dropped


def _uvicorn_flavour() -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {importlib.metadata.version('uvicorn')} ({loop} loop, {http})"


@attrs.frozen
class Stage:
    real: Server
    bare: Server
    path: str  # the job's, answered by both
    body_bytes: int


def set_stage(stack: contextlib.ExitStack, redis_url: str, bearer: str) -> Stage:
    """Both servers up, the real one over a fresh database holding one job; ``stack`` takes them down."""
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opusclip-bench-")))
    env = service_env(
        stack.enter_context(fresh_database()),
        scratch,
        REDIS_URL=redis_url,
        RATE_LIMIT_DEFAULT=RATE_LIMIT,
        RATE_LIMIT_SUBMIT=RATE_LIMIT,
        LOG_LEVEL="info",
        LOG_FORMAT="json",
        HEALTH_CHECK_INTERVAL="",  # unset: the service's own default, not the tests' 1 s
    )
    port = free_port()
    serve = opusclip("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
    real = stack.enter_context(serving(serve, env, port, REAL_LOG))
    job_id, body = submit_job(real.url, bearer)
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "bare_app:create_app", "--app-dir", str(BENCH)]
    uvicorn += ["--host", "127.0.0.1", "--port", str(port), *UVICORN_OPTIONS, "--log-level", "warning"]
    bare = stack.enter_context(serving(uvicorn, {**os.environ, "BARE_BODY": body}, port, BARE_LOG))
    return Stage(real, bare, f"/v1/jobs/{job_id}", len(body.encode()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per round and server")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured time before each round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="each server keeps its best of this many")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument(
        "--generator",
        choices=("wrk", "httpx"),
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator (default: wrk when installed; `make bench` installs it)",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--seconds must be > 0, --warmup >= 0, --connections and --rounds >= 1")
    signal.signal(signal.SIGTERM, _terminate)

    OUT.mkdir(parents=True, exist_ok=True)
    bearer = token(f"bench-{uuid.uuid4().hex[:12]}")
    print(f"cpus: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}; {_uvicorn_flavour()}")
    rounds: dict[str, list[Measurement]] = {"bare": [], "real": []}
    with contextlib.ExitStack() as stack:
        stage = set_stage(stack, args.redis_url, bearer)
        spawn = multiprocessing.get_context("spawn")
        generator = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=spawn))
        print(
            f"GET /v1/jobs/{{id}}: {stage.body_bytes}-byte body from both; {args.generator}, "
            f"{args.connections} connections, "
            f"{args.warmup:g} s warm-up + {args.seconds:g} s per round, best of {args.rounds}"
        )
        print(f"real: opusclip serve, JSON log of every request at info to {REAL_LOG.relative_to(ROOT)}")
        print("bare: bench/bare_app.py, log level warning; both: " + " ".join(UVICORN_OPTIONS))
        for number in range(1, args.rounds + 1):
            for name, server in (("bare", stage.bare), ("real", stage.real)):
                task = (server.url, stage.path, bearer, args.connections, args.warmup, args.seconds)
                drive = measure_wrk if args.generator == "wrk" else measure
                result = Measurement(**generator.submit(drive, *task, server.pid).result())
                rounds[name].append(result)
                print(
                    f"  round {number} {name}: {result.rps:7.0f} rps, p99 {result.p99_ms:6.1f} ms, "
                    f"errors {sum(result.errors.values())}, generator {result.generator_cpu:.0%} of a core"
                )
    report(rounds, args, reads_without_limit(REAL_LOG))


def report(
    rounds: dict[str, list[Measurement]], args: argparse.Namespace, unlimited: tuple[int, int]
) -> None:
    connections = args.connections
    best = {name: max(runs, key=lambda run: run.rps) for name, runs in rounds.items()}
    bare, real = best["bare"], best["real"]
    print()
    print(f"{'endpoint':<10}{'rps':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server cpu':>12}", end="")
    print(f"{'µs/req':>8}{'generator cpu':>15}{'µs/req':>8}")
    for name, run in best.items():
        print(
            f"{name:<10}{run.rps:>8.0f}{run.p50_ms:>9.1f}{run.p99_ms:>9.1f}{sum(run.errors.values()):>8}"
            f"{run.server_cpu:>12.0%}{run.server_us_per_request:>8.0f}"
            f"{run.generator_cpu:>15.0%}{run.generator_us_per_request:>8.0f}"
        )
    ratio = real.rps / bare.rps
    cpu_ratio = bare.server_us_per_request / real.server_us_per_request
    print(f"ratio real / bare rps: {ratio:.3f} (target >= {TARGET_RATIO})")
    print(
        f"ratio of server CPU per request, bare / real: {cpu_ratio:.3f} (the rps ratio if each server had "
        "a core to itself and nothing else bounded it; Postgres' and Redis' CPU not counted)"
    )

    errors: collections.Counter[str] = collections.Counter()
    for run in (*rounds["bare"], *rounds["real"]):
        errors.update(run.errors)
    total = sum(run.requests for runs in rounds.values() for run in runs) + sum(errors.values())
    doubt = (
        f"; doubtful: the generator bounded bare, CPU ratio {cpu_ratio:.1%}" if bare.generator_bound else ""
    )
    verdicts = {
        "throughput": (
            ratio >= TARGET_RATIO,
            f"real is {ratio:.1%} of bare (target >= {TARGET_RATIO:.0%}){doubt}",
        ),
        "p99": (
            real.p99_ms < TARGET_P99_MS,
            f"real p99 {real.p99_ms:.1f} ms at {connections} connections (target < {TARGET_P99_MS:g} ms)",
        ),
        "errors": (
            not errors,
            f"{sum(errors.values())} errors{' ' + str(dict(errors)) if errors else ''} in {total} requests, "
            "every round of both",
        ),
    }
    for name, (passed, line) in verdicts.items():
        print(f"{name + ':':<12}{'PASS' if passed else 'FAIL'}  {line}")

    if unlimited[0]:
        print(
            f"note: {unlimited[0]} of {unlimited[1]} reads (warm-up included) went on without a rate-limit "
            "decision: Redis did not answer the busy server within the limiter's 200 ms"
        )
    if real.p99_ms >= TARGET_P99_MS:
        print(
            f"note: in a closed loop mean latency is connections / rps (Little's law): under "
            f"{TARGET_P99_MS:g} ms at {connections} connections needs over "
            f"{connections / TARGET_P99_MS * 1000:.0f} rps"
        )
    for name, run in best.items():
        if run.generator_bound:
            print(
                f"note: against {name}, the load generator spent {run.generator_us_per_request:.0f} µs of "
                f"CPU per request ({run.generator_cpu:.0%} of a core) to the server's "
                f"{run.server_us_per_request:.0f} µs: it, not the server, set the pace"
                + (
                    "; bare rps is a floor, so the rps ratio flatters the real route"
                    if name == "bare"
                    else ""
                )
            )
    if args.json:
        document = {
            "connections": connections,
            "seconds_per_round": args.seconds,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "bare": bare.as_json(),
            "real": real.as_json(),
            "ratio": round(ratio, 4),
            "cpu_ratio": round(cpu_ratio, 4),
            "reads_without_rate_limit": unlimited[0],
            "reads_logged": unlimited[1],
            "targets": {name: passed for name, (passed, _) in verdicts.items()},
        }
        print(json.dumps(document, indent=2))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; the servers are stopped and the scratch database dropped") from None
