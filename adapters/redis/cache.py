"""``RedisCache``: the Cache port on Redis, where an outage is a miss, never an error.

Losing Redis must cost speed, not correctness (DESIGN.md, scale-out), so every Redis failure is logged,
counted in ``opusclip_cache_errors_total{operation}`` and swallowed.
"""

from __future__ import annotations

import asyncio

import attrs
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

# Module-level on the default registry: one set of series per process however many caches exist.
CACHE_ERRORS = Counter(
    "opusclip_cache_errors_total", "Cache operations that failed (treated as a miss)", ["operation"]
)
CACHE_HITS = Counter("opusclip_cache_hits_total", "Cache reads that found a value")
CACHE_MISSES = Counter("opusclip_cache_misses_total", "Cache reads that found nothing (errors included)")

# What a dead, slow or confused Redis raises through redis-py's asyncio client.
_OUTAGE = (RedisError, OSError, asyncio.TimeoutError)


def create_redis_client(
    url: str, socket_timeout: float = 0.5, connect_timeout: float = 0.5
) -> aioredis.Redis:
    """A pooled client that gives up quickly: a cache that waits seconds for Redis is slower than none."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        # No retries: the caller falls back to computing the value, which beats waiting on a retry loop.
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


@attrs.define
class RedisCache:
    """Bytes by key with a TTL, under ``prefix`` so several services can share one Redis database."""

    client: aioredis.Redis
    default_ttl: int
    prefix: str = "opusclip:"

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(self.prefix + key)
        except _OUTAGE as error:
            self._failed("get", key, error)
            CACHE_MISSES.inc()
            return None
        if value is None:
            CACHE_MISSES.inc()
            return None
        CACHE_HITS.inc()
        # A client built with decode_responses=True hands back str; the port promises bytes.
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        ttl = self.default_ttl if ttl_seconds is None else ttl_seconds
        try:
            await self.client.set(self.prefix + key, value, ex=max(1, ttl))
        except _OUTAGE as error:
            self._failed("set", key, error)

    @staticmethod
    def _failed(operation: str, key: str, error: BaseException) -> None:
        CACHE_ERRORS.labels(operation=operation).inc()
        log.warning(
            "cache.unavailable", operation=operation, key=key, error=f"{type(error).__name__}: {error}"
        )
