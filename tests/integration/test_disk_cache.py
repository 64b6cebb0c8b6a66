from pathlib import Path

from adapters.disk.cache import DiskCache


async def test_values_survive_a_new_instance(tmp_path: Path) -> None:
    first = DiskCache(tmp_path, default_ttl=60)
    await first.set("k", b"\x00bytes")
    first.close()
    second = DiskCache(tmp_path, default_ttl=60)
    assert await second.get("k") == b"\x00bytes"
    assert await second.get("missing") is None
    second.close()


async def test_expired_values_miss(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, default_ttl=60)
    await cache.set("k", b"v", ttl_seconds=-1)
    assert await cache.get("k") is None
    cache.close()


async def test_an_unusable_folder_is_a_cache_that_always_misses(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    cache = DiskCache(blocked / "cache", default_ttl=60)
    await cache.set("k", b"v")
    assert await cache.get("k") is None
    cache.close()
