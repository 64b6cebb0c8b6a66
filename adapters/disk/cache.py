"""Cache port on local disk (diskcache, SQLite-backed), so repeated CLI runs on one file skip decoding."""

from __future__ import annotations

import asyncio
from pathlib import Path

import diskcache
import structlog

log = structlog.get_logger(__name__)


class DiskCache:
    """Bytes with TTL under a folder; like every cache, a broken store behaves as a miss."""

    def __init__(self, directory: Path, default_ttl: int, size_limit: int = 2 * 1024**3) -> None:
        self._ttl = default_ttl
        self._cache: diskcache.Cache | None = None
        try:
            self._cache = diskcache.Cache(str(directory), size_limit=size_limit)
        except Exception as error:  # an unusable folder means no cache, not a failed run
            log.warning("cache.unavailable", directory=str(directory), error=str(error))

    async def get(self, key: str) -> bytes | None:
        if self._cache is None:
            return None
        try:
            value = await asyncio.to_thread(self._cache.get, key)
        except Exception as error:  # a cache failure is a miss, never a failed job
            log.warning("cache.get_failed", key=key, error=str(error))
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        if self._cache is None:
            return
        try:
            await asyncio.to_thread(self._cache.set, key, value, ttl_seconds or self._ttl)
        except Exception as error:  # see get
            log.warning("cache.set_failed", key=key, error=str(error))

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
