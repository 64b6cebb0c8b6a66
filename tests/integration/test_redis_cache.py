"""RedisCache and RedisProbe against a real Redis (``redis_url`` from tests/integration/conftest.py)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from adapters.redis.cache import RedisCache, create_redis_client
from adapters.redis.probe import RedisProbe


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def closed_port_url() -> str:
    # Bind then close: nothing listens there for the few seconds a test runs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = create_redis_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    # A random prefix per test instead of FLUSHDB, so tests can share one Redis database.
    return f"test:{uuid.uuid4().hex}:"


async def test_round_trip_with_prefix_and_ttl(client: aioredis.Redis, prefix: str) -> None:
    cache = RedisCache(client, default_ttl=300, prefix=prefix)
    payload = bytes(range(256)) * 10
    hits = _sample("opusclip_cache_hits_total")
    await cache.set("analysis:abc", payload)
    assert await cache.get("analysis:abc") == payload
    assert _sample("opusclip_cache_hits_total") == hits + 1
    assert await client.get(prefix + "analysis:abc") == payload  # stored under the prefix
    assert 290 <= await client.ttl(prefix + "analysis:abc") <= 300
    await cache.set("short", b"x", ttl_seconds=20)
    assert 0 < await client.ttl(prefix + "short") <= 20


async def test_missing_key_is_a_counted_miss(client: aioredis.Redis, prefix: str) -> None:
    cache = RedisCache(client, default_ttl=60, prefix=prefix)
    misses = _sample("opusclip_cache_misses_total")
    assert await cache.get("nothing-here") is None
    assert _sample("opusclip_cache_misses_total") == misses + 1


async def test_outage_is_a_quick_miss_that_is_logged_and_counted(closed_port_url: str) -> None:
    client = create_redis_client(closed_port_url)
    cache = RedisCache(client, default_ttl=60)
    get_errors = _sample("opusclip_cache_errors_total", operation="get")
    set_errors = _sample("opusclip_cache_errors_total", operation="set")
    try:
        started = time.monotonic()
        assert await cache.get("k") is None
        await cache.set("k", b"v")  # must not raise
        # Upper bound only: both calls together stay well under the (0.5 s) socket timeouts plus slack.
        assert time.monotonic() - started < 3.0
    finally:
        await client.aclose()
    assert _sample("opusclip_cache_errors_total", operation="get") == get_errors + 1
    assert _sample("opusclip_cache_errors_total", operation="set") == set_errors + 1


async def test_probe_passes_on_live_redis_and_raises_on_a_closed_port(
    client: aioredis.Redis, closed_port_url: str
) -> None:
    probe = RedisProbe(client)
    assert (probe.name, probe.required) == ("redis", False)
    await probe.check()
    dead = create_redis_client(closed_port_url)
    try:
        with pytest.raises((ConnectionError, OSError, aioredis.RedisError)):
            await RedisProbe(dead).check()
    finally:
        await dead.aclose()
