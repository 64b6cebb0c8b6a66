from __future__ import annotations

from adapters.memory.cache import MemoryCache, NullCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_cache_returns_what_was_set_until_it_expires() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"value", ttl_seconds=10)
    assert await cache.get("k") == b"value"
    clock.now += 9.9
    assert await cache.get("k") == b"value"
    clock.now += 0.1
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_memory_cache_uses_default_ttl_and_none_means_forever() -> None:
    clock = Clock()
    expiring = MemoryCache(default_ttl=5, clock=clock)
    forever = MemoryCache(clock=clock)
    await expiring.set("k", b"a")
    await forever.set("k", b"b")
    clock.now += 1e6
    assert await expiring.get("k") is None
    assert await forever.get("k") == b"b"


async def test_memory_cache_misses_unknown_keys_and_overwrites() -> None:
    cache = MemoryCache()
    assert await cache.get("missing") is None
    await cache.set("k", b"1")
    await cache.set("k", b"2")
    assert await cache.get("k") == b"2"


async def test_memory_cache_keeps_a_copy_of_mutable_input() -> None:
    cache = MemoryCache()
    buffer = bytearray(b"abc")
    await cache.set("k", buffer)  # type: ignore[arg-type]  # callers may pass any bytes-like value
    buffer[0] = ord("z")
    assert await cache.get("k") == b"abc"


async def test_null_cache_always_misses() -> None:
    cache = NullCache()
    await cache.set("k", b"value", ttl_seconds=60)
    assert await cache.get("k") is None
