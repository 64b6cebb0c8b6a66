"""In-process caches: ``MemoryCache`` for the CLI and tests, ``NullCache`` when caching is switched off."""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs


@attrs.define
class MemoryCache:
    """A dict with per-entry expiry; expired entries are dropped when read.

    ``clock`` is injectable so tests can move time instead of sleeping.
    """

    default_ttl: int | None = None
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[bytes, float | None]] = attrs.field(factory=dict, init=False)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and self.clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        ttl = self.default_ttl if ttl_seconds is None else ttl_seconds
        self._entries[key] = (bytes(value), None if ttl is None else self.clock() + ttl)

    def __len__(self) -> int:
        return len(self._entries)


@attrs.frozen
class NullCache:
    """CACHE_ENABLED=false: every read misses and writes are dropped."""

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        return None
