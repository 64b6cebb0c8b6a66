# Lagom keys registrations by port, and ports are Protocols: mypy's type-abstract check does not apply.
# mypy: disable-error-code="type-abstract"
"""The composition root: the one place that chooses an adapter for each port.

``build_container`` wires the service (Postgres, Redis, torch, PyAV); ``build_local_container`` wires the
same use cases with in-memory storage for the one-command CLI. Use cases are attrs classes whose fields
are ports; Lagom builds them by type, so adding a use case needs no registration here.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from lagom import Container, Singleton
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from adapters.disk.cache import DiskCache
from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.faces import HaarFaceTracker
from adapters.media.filesystem_store import FilesystemMediaStore
from adapters.media.local_fetcher import LocalFileFetcher
from adapters.media.probe import MediaLimits
from adapters.media.renderer import PyAVClipRenderer
from adapters.memory.cache import NullCache
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from adapters.postgres.engine import create_engine
from adapters.postgres.probe import PostgresProbe
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from adapters.redis.cache import RedisCache, create_redis_client
from adapters.redis.probe import RedisProbe
from adapters.speech.transcriber import PocketSphinxTranscriber
from adapters.speech.vad import SileroVad
from adapters.torch.model_manager import ModelManager
from adapters.torch.video_model import TorchVideoModel
from application.check_health import CheckHealth, DependencyProbes, HealthMonitor
from application.config import AppConfig
from domain.ports import (
    Cache,
    ClipRenderer,
    MediaAnalyzer,
    MediaFetcher,
    MediaStore,
    Transcriber,
    UnitOfWorkFactory,
    VideoModel,
)
from entrypoints.lifecycle import Lifecycle, Resource


def build_container(config: AppConfig) -> Container:
    """The service: Postgres unit of work, Redis cache, dependency probes, media and model adapters."""
    container = _base(config)
    lifecycle = container[Lifecycle]
    engine: Resource[AsyncEngine] = lifecycle.add(
        "postgres",
        lambda: create_engine(
            config.database_url,
            pool_size=config.database_pool_size,
            max_overflow=config.database_max_overflow,
            connect_timeout=config.database_connect_timeout,
            command_timeout=config.database_command_timeout,
            pool_timeout=config.database_pool_timeout,
        ),
        lambda e: e.dispose(),
    )
    redis = lifecycle.add("redis", lambda: create_redis_client(config.redis_url), lambda r: r.aclose())
    lifecycle.add("http", lambda: httpx.AsyncClient(timeout=config.request_timeout), lambda c: c.aclose())
    _add_engines(container, lifecycle, config)

    container[UnitOfWorkFactory] = Singleton(
        lambda: PostgresUnitOfWorkFactory(async_sessionmaker(engine.get(), expire_on_commit=False))
    )
    if config.cache_enabled:
        container[Cache] = Singleton(lambda: RedisCache(redis.get(), default_ttl=config.cache_ttl_seconds))
    else:
        container[Cache] = NullCache()
    container[DependencyProbes] = Singleton(
        lambda: DependencyProbes((PostgresProbe(engine.get()), RedisProbe(redis.get())))
    )
    container[HealthMonitor] = Singleton(
        lambda c: HealthMonitor(c[CheckHealth], interval=config.health_check_interval)
    )
    return container


def build_local_container(config: AppConfig, media_root: Path) -> Container:
    """The CLI: the same use cases with in-memory storage, a disk cache, rendering under ``media_root``."""
    container = _base(config, media_root)
    lifecycle = container[Lifecycle]
    _add_engines(container, lifecycle, config)
    container[UnitOfWorkFactory] = MemoryUnitOfWorkFactory()
    if config.cache_enabled:
        # On disk, so a second run on the same file (say, another aspect) skips decoding and recognition.
        disk = lifecycle.add(
            "cache",
            lambda: DiskCache(config.cache_dir, default_ttl=config.cache_ttl_seconds),
            lambda c: c.close(),
        )
        container[Cache] = lambda: disk.get()
    else:
        container[Cache] = NullCache()
    return container


def _base(config: AppConfig, media_root: Path | None = None) -> Container:
    container = Container()
    container[AppConfig] = config
    container[Lifecycle] = Lifecycle()
    limits = MediaLimits(max_seconds=config.max_video_seconds, max_pixels=config.max_video_pixels)
    container[MediaFetcher] = LocalFileFetcher()
    container[MediaAnalyzer] = Singleton(lambda: PyAVMediaAnalyzer(limits, vad=SileroVad()))
    container[ClipRenderer] = Singleton(lambda: PyAVClipRenderer(faces=HaarFaceTracker()))
    container[MediaStore] = FilesystemMediaStore(media_root or config.media_dir)
    return container


def _add_engines(container: Container, lifecycle: Lifecycle, config: AppConfig) -> None:
    """The speech recogniser's process pool and the torch models: both lifecycle resources."""
    # The recogniser owns a pool of worker processes: the lifecycle closes it with everything else.
    speech = lifecycle.add(
        "speech", lambda: PocketSphinxTranscriber(workers=config.max_workers), lambda t: t.close()
    )
    container[Transcriber] = lambda: speech.get()

    async def open_models() -> ModelManager:
        manager = ModelManager(
            config.model_cache_dir, device=config.device, mixed_precision=config.mixed_precision
        )
        await manager.start()
        return manager

    async def close_models(manager: ModelManager) -> None:
        await manager.close()

    models = lifecycle.add("models", open_models, close_models)
    container[VideoModel] = lambda: TorchVideoModel(models.get(), version=config.model_version or None)
