"""LimitsRateLimiter against a real Redis (``redis_url``), and against Redis that is gone, silent or back."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from adapters.redis.rate_limiter import LimitsRateLimiter
from domain.auth import RouteClass
from domain.errors import DependencyUnavailable

DECISION_BOUND_SECONDS = 0.25  # the requirement: a request never waits longer than this for its decision


def subject() -> str:
    # Random per test instead of FLUSHDB, so runs and tests can share one Redis database.
    return f"user-{uuid.uuid4().hex}"


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[LimitsRateLimiter]:
    # Equal budgets, so only the key keeps the two route classes apart.
    limiter = LimitsRateLimiter.from_url(redis_url, read="3/minute", submit="3/minute")
    yield limiter
    await limiter.close()


@pytest.fixture
def closed_port() -> int:
    # Bind then close: nothing listens there for the few seconds a test runs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    # Listens but never accepts: the kernel completes a handshake or two, then nothing ever answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


async def assert_unavailable_within_bound(limiter: LimitsRateLimiter, calls: int = 4) -> None:
    for route_class in [RouteClass.READ, RouteClass.SUBMIT] * (calls // 2):
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable):
            await limiter.hit("alice", route_class)
        assert time.monotonic() - started < DECISION_BOUND_SECONDS


async def test_allows_up_to_the_limit_then_refuses_with_retry_after(limiter: LimitsRateLimiter) -> None:
    alice = subject()
    for _ in range(3):
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
    refused = await limiter.hit(alice, RouteClass.READ)
    assert not refused.allowed
    assert 1 <= refused.retry_after <= 60


async def test_budgets_are_per_subject_and_per_route_class(limiter: LimitsRateLimiter) -> None:
    alice, bob = subject(), subject()
    for _ in range(3):
        assert (await limiter.hit(alice, RouteClass.SUBMIT)).allowed
    assert not (await limiter.hit(alice, RouteClass.SUBMIT)).allowed
    assert (await limiter.hit(bob, RouteClass.SUBMIT)).allowed
    for _ in range(3):
        assert (await limiter.hit(alice, RouteClass.READ)).allowed


async def test_retry_after_is_when_the_window_admits_again(redis_url: str) -> None:
    limiter = LimitsRateLimiter.from_url(redis_url, read="2/second", submit="1/minute")
    alice = subject()
    try:
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
        refused = await limiter.hit(alice, RouteClass.READ)
        assert (refused.allowed, refused.retry_after) == (False, 1)
        await asyncio.sleep(refused.retry_after + 0.05)
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
    finally:
        await limiter.close()


async def test_closed_port_is_unavailable_within_the_bound(closed_port: int) -> None:
    limiter = LimitsRateLimiter.from_url(
        f"redis://127.0.0.1:{closed_port}/0", read="3/minute", submit="2/minute"
    )
    try:
        await assert_unavailable_within_bound(limiter)
    finally:
        await limiter.close()


async def test_silent_listener_is_unavailable_within_the_bound(blackhole_port: int) -> None:
    url = f"redis://127.0.0.1:{blackhole_port}/0"
    limiter = LimitsRateLimiter.from_url(url, read="3/minute", submit="2/minute")
    try:
        # More calls than the listen backlog: later connects are never even completed by the kernel.
        await assert_unavailable_within_bound(limiter, calls=6)
    finally:
        await limiter.close()


async def test_unresolvable_host_is_unavailable_within_the_bound() -> None:
    limiter = LimitsRateLimiter.from_url(
        "redis://opusclip-redis.invalid:6379/0", read="3/minute", submit="2/minute"
    )
    try:
        await assert_unavailable_within_bound(limiter)
    finally:
        await limiter.close()


class Relay:
    """A TCP relay to Redis, cut and restored on one port: a Redis restart as the limiter sees it."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path.strip("/") or "0"
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def test_decisions_resume_when_redis_comes_back(redis_url: str) -> None:
    relay = Relay(redis_url)
    await relay.start()
    limiter = LimitsRateLimiter.from_url(relay.url, read="2/minute", submit="2/minute")
    alice = subject()
    try:
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
        await relay.stop()  # the pooled connection dies and new ones are refused
        await assert_unavailable_within_bound(limiter)
        await relay.start()
        assert (await limiter.hit(alice, RouteClass.READ)).allowed
        assert not (await limiter.hit(alice, RouteClass.READ)).allowed  # the count survived the outage
    finally:
        await limiter.close()
        await relay.stop()


async def _cached_scripts(limiter: LimitsRateLimiter) -> int:
    return int((await limiter.client.info("memory"))["number_of_cached_scripts"])


async def test_warm_up_loads_the_scripts_and_charges_no_one(limiter: LimitsRateLimiter) -> None:
    # The first requests after start-up must not pay for loading limits' scripts inside their 200 ms.
    await limiter.client.script_flush()
    assert await _cached_scripts(limiter) == 0
    await limiter.warm_up()
    assert await _cached_scripts(limiter) >= 1
    who = subject()
    assert [(await limiter.hit(who, RouteClass.SUBMIT)).allowed for _ in range(4)] == [True] * 3 + [False]


async def test_warm_up_without_redis_lets_the_service_start(closed_port: int) -> None:
    limiter = LimitsRateLimiter.from_url(
        f"redis://127.0.0.1:{closed_port}/0", read="3/minute", submit="3/minute"
    )
    try:
        await limiter.warm_up()  # logged, not raised: decisions fail closed once requests come
        with pytest.raises(DependencyUnavailable):
            await limiter.hit(subject(), RouteClass.SUBMIT)
    finally:
        await limiter.close()
