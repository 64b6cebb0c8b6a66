# Lagom keys registrations by port, and ports are Protocols: mypy's type-abstract check does not apply.
# mypy: disable-error-code="type-abstract"
"""The composition root: the one place that chooses an adapter for each port.

Three containers, one per kind of process, each opening only what its process uses:

* ``build_container``: the API (Postgres and its job-change notifications, the job queue's SQL side, Redis
  cache and rate limits, tokens);
* ``build_worker_container``: a worker (the same storage, plus URL fetching and the media, speech and model
  adapters, each media call in an isolated child process);
* ``build_local_container``: the one-command CLI (in-memory storage, a disk cache, media in-process).

Use cases are attrs classes whose fields are ports; Lagom builds them by type, so adding a use case needs no
registration here.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagom import Container, Singleton
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.media.filesystem_store import FilesystemMediaStore
from adapters.memory.cache import NullCache
from adapters.memory.rate_limiter import UnlimitedRateLimiter
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from adapters.postgres.engine import create_engine
from adapters.postgres.job_changes import PostgresJobChanges
from adapters.postgres.probe import PostgresProbe
from adapters.postgres.unit_of_work import Gate, PostgresUnitOfWorkFactory
from adapters.redis.cache import RedisCache, create_redis_client
from adapters.redis.probe import RedisProbe
from adapters.redis.rate_limiter import LimitsRateLimiter
from application.check_health import CheckHealth, DependencyProbes, HealthMonitor
from application.config import AppConfig
from application.job_attempt import JobRunPolicy
from application.prune_uploads import UploadRetention
from application.train_model import TrainingPolicy
from domain.ports import (
    Cache,
    ClipRenderer,
    JobChanges,
    MediaAnalyzer,
    MediaFetcher,
    MediaStore,
    RateLimiter,
    TokenAuthority,
    Trainer,
    Transcriber,
    UnitOfWorkFactory,
    UploadStore,
    VideoModel,
)
from domain.retry import RetryPolicy
from entrypoints.lifecycle import Lifecycle, Resource

if TYPE_CHECKING:
    from adapters.media.isolation import Isolation
    from adapters.media.probe import MediaLimits
    from adapters.torch.model_manager import ModelManager
from entrypoints.token_command import build_token_authority


def build_container(config: AppConfig) -> Container:
    """The API: storage, cache, health, tokens and rate limits. It never decodes media nor fetches URLs."""
    container = _base(config)
    lifecycle = container[Lifecycle]
    _add_storage(container, lifecycle, config, api=True)
    container[TokenAuthority] = Singleton(lambda: build_token_authority(config))

    # One LISTEN connection per API process, outside the pools: followers of a job wake on its changes.
    async def open_changes() -> PostgresJobChanges:
        return await PostgresJobChanges.open(config.database_url)

    changes: Resource[PostgresJobChanges] = lifecycle.add("job-changes", open_changes, lambda c: c.close())
    container[JobChanges] = lambda: changes.get()
    if config.rate_limit_enabled:

        async def open_limiter() -> LimitsRateLimiter:
            limiter = LimitsRateLimiter.from_url(
                config.redis_url, read=config.rate_limit_default, submit=config.rate_limit_submit
            )
            await limiter.warm_up()
            return limiter

        limiter: Resource[LimitsRateLimiter] = lifecycle.add("rate-limits", open_limiter, lambda r: r.close())
        container[RateLimiter] = lambda: limiter.get()
    else:
        container[RateLimiter] = UnlimitedRateLimiter()
    return container


def build_worker_container(config: AppConfig) -> Container:
    """A worker: storage and cache as the API has them, URL fetching, and the media, speech and model
    adapters; every media call runs in a child process with a memory limit and a deadline."""
    # Imported here, not at the top: the API never loads torch, PyAV or OpenCV (a quarter of a million
    # objects that every full garbage collection of a busy API process would otherwise walk).
    from adapters.media.isolated import (
        IsolatedClipRenderer,
        IsolatedMediaAnalyzer,
        IsolatedTranscriber,
        IsolationLimits,
        analyzer_with_vad,
        renderer_with_faces,
    )
    from adapters.media.isolation import Isolation
    from adapters.media.service_fetcher import ServiceMediaFetcher
    from adapters.media.upload_folder import UploadFolder
    from adapters.media.url_fetcher import FetchLimits, HttpMediaFetcher, create_fetch_client
    from adapters.speech.whisper import WhisperTranscriber
    from adapters.speech.whisper_model import WhisperModelFiles, resolve

    container = _base(config)
    lifecycle = container[Lifecycle]
    _add_storage(container, lifecycle, config, api=False)
    http = lifecycle.add(
        "http", lambda: create_fetch_client(config.request_timeout), lambda client: client.aclose()
    )
    downloads = HttpMediaFetcher(
        client=lambda: http.get(),
        downloads=config.media_dir / "downloads",
        limits=FetchLimits(
            max_bytes=config.max_upload_bytes,
            deadline_seconds=config.fetch_timeout_seconds,
            allowed_networks=config.fetch_allowed_networks,
        ),
    )
    container[MediaFetcher] = ServiceMediaFetcher(media_root=config.media_dir, http=downloads)
    container[UploadStore] = UploadFolder(config.media_dir / "uploads")
    container[UploadRetention] = UploadRetention(hours=config.upload_retention_hours)

    async def open_isolation() -> Isolation:
        isolation = Isolation()
        await asyncio.to_thread(isolation.start)  # seconds of imports in the forkserver, off the loop
        return isolation

    isolation: Resource[Isolation] = lifecycle.add("isolation", open_isolation, lambda i: i.close())
    container[Isolation] = lambda: isolation.get()
    limits = IsolationLimits(
        memory_bytes=config.media_memory_limit_bytes,
        timeout_seconds=config.media_timeout_seconds,
        timeout_factor=config.media_timeout_factor,
    )
    container[MediaAnalyzer] = Singleton(
        lambda: IsolatedMediaAnalyzer(
            functools.partial(analyzer_with_vad, _media_limits(config)), isolation.get(), limits
        )
    )
    container[ClipRenderer] = Singleton(
        lambda: IsolatedClipRenderer(renderer_with_faces, isolation.get(), limits)
    )
    # The model's files are found (a named model downloaded if it is nowhere on disk) and hashed once, at
    # start-up: a bad model stops the worker, not every job. Each transcription's child checks them again
    # and loads the model (~0.4 s for tiny.en): a loaded model cannot be forked (its threads would not be).
    speech: Resource[WhisperModelFiles] = lifecycle.add(
        "speech-model", lambda: asyncio.to_thread(resolve, config.whisper_model), lambda _: None
    )
    container[Transcriber] = Singleton(
        lambda: IsolatedTranscriber(
            functools.partial(WhisperTranscriber, speech.get(), **_whisper_settings(config)),
            isolation.get(),
            limits,
        )
    )
    _add_models(container, lifecycle, config)
    _add_training(container, config)  # runs queued through POST /v1/training-runs
    return container


def build_training_container(config: AppConfig) -> Container:
    """``opusclip train`` and ``eval``: storage, the cache that holds the features, models and the trainer."""
    container = _base(config)
    lifecycle = container[Lifecycle]
    _add_storage(container, lifecycle, config, api=False)
    _add_models(container, lifecycle, config)
    _add_training(container, config)
    return container


def _add_training(container: Container, config: AppConfig) -> None:
    from adapters.torch.trainer import TorchTrainer
    from entrypoints.train_command import training_settings

    container[Trainer] = TorchTrainer()
    container[TrainingPolicy] = TrainingPolicy(
        model_dir=config.model_cache_dir,
        min_new_ratings=config.train_min_new_ratings,
        promotion_margin=config.train_promotion_margin,
        settings=training_settings(config),
    )


def build_local_container(config: AppConfig, media_root: Path) -> Container:
    """The CLI: the same use cases with in-memory storage, a disk cache, media in this process, rendering
    under ``media_root``. One attempt: a person at a terminal decides whether to try again."""
    from adapters.disk.cache import DiskCache
    from adapters.media.analyzer import PyAVMediaAnalyzer
    from adapters.media.faces import HaarFaceTracker
    from adapters.media.local_fetcher import LocalFileFetcher
    from adapters.media.renderer import PyAVClipRenderer
    from adapters.speech.vad import SileroVad

    container = _base(config, media_root)
    container[JobRunPolicy] = JobRunPolicy(
        lease_seconds=config.job_lease_seconds, retry=RetryPolicy(1), model_pin=config.model_version or None
    )
    lifecycle = container[Lifecycle]
    container[MediaFetcher] = LocalFileFetcher()
    container[MediaAnalyzer] = Singleton(lambda: PyAVMediaAnalyzer(_media_limits(config), vad=SileroVad()))
    container[ClipRenderer] = Singleton(lambda: PyAVClipRenderer(faces=HaarFaceTracker()))
    _add_transcriber(container, lifecycle, config)
    _add_models(container, lifecycle, config, reads_only=True)
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


def build_speech_container(config: AppConfig) -> Container:
    """``opusclip transcribe``: the transcriber alone, in this process."""
    container = _base(config)
    _add_transcriber(container, container[Lifecycle], config)
    return container


def _add_transcriber(container: Container, lifecycle: Lifecycle, config: AppConfig) -> None:
    """Whisper in this process: loaded once at start-up (its files checked first), unloaded at close."""
    from adapters.speech.whisper import WhisperTranscriber

    async def open_speech() -> WhisperTranscriber:
        settings = _whisper_settings(config)
        return await asyncio.to_thread(WhisperTranscriber.open, config.whisper_model, **settings)

    def close_speech(transcriber: WhisperTranscriber) -> None:
        transcriber.close()

    speech = lifecycle.add("speech", open_speech, close_speech)
    container[Transcriber] = lambda: speech.get()


def _whisper_settings(config: AppConfig) -> dict[str, Any]:
    from adapters.speech.whisper import whisper_device

    return {
        "device": whisper_device(config.device),
        "compute_type": config.whisper_compute_type,
        "threads": config.max_workers,
    }


def _base(config: AppConfig, media_root: Path | None = None) -> Container:
    container = Container()
    container[AppConfig] = config
    container[Lifecycle] = Lifecycle()
    container[MediaStore] = FilesystemMediaStore(media_root or config.media_dir)
    return container


def _service_policy(config: AppConfig) -> JobRunPolicy:
    return JobRunPolicy(
        lease_seconds=config.job_lease_seconds,
        retry=RetryPolicy(
            max_attempts=config.job_max_attempts,
            base_seconds=config.job_retry_base_seconds,
            max_seconds=config.job_retry_max_seconds,
        ),
        model_pin=config.model_version or None,
    )


def _media_limits(config: AppConfig) -> MediaLimits:
    from adapters.media.probe import MediaLimits

    return MediaLimits(max_seconds=config.max_video_seconds, max_pixels=config.max_video_pixels)


def _add_storage(container: Container, lifecycle: Lifecycle, config: AppConfig, *, api: bool) -> None:
    """Postgres (the unit of work, with the job queue's SQL side), the Redis cache, the health probes and
    how attempts hold and retry jobs.

    The API reads through a second pool in autocommit mode (one round trip per query on its busiest routes)
    and skips the pre-ping: after a database restart one request per process gets a 503 while the pool is
    renewed, instead of every request paying a round trip. A worker writes far less often and pings first.
    """
    container[JobRunPolicy] = _service_policy(config)

    def engine(name: str, *, autocommit: bool = False) -> Resource[AsyncEngine]:
        return lifecycle.add(
            name,
            lambda: create_engine(
                config.database_url,
                pool_size=config.database_pool_size,
                max_overflow=config.database_max_overflow,
                connect_timeout=config.database_connect_timeout,
                command_timeout=config.database_command_timeout,
                pool_timeout=config.database_pool_timeout,
                pre_ping=not api,
                autocommit=autocommit,
            ),
            lambda e: e.dispose(),
        )

    writes = engine("postgres")
    reads = engine("postgres-reads", autocommit=True) if api else None
    redis = lifecycle.add("redis", lambda: create_redis_client(config.redis_url), lambda r: r.aclose())

    def gate() -> Gate:
        slots = config.database_pool_size + config.database_max_overflow
        return Gate(slots=slots, timeout=config.database_pool_timeout)

    container[UnitOfWorkFactory] = Singleton(
        lambda: PostgresUnitOfWorkFactory(
            writes.get(), reads.get() if reads else None, gate=gate(), read_gate=gate()
        )
    )
    if config.cache_enabled:
        container[Cache] = Singleton(lambda: RedisCache(redis.get(), default_ttl=config.cache_ttl_seconds))
    else:
        container[Cache] = NullCache()
    container[DependencyProbes] = Singleton(
        lambda: DependencyProbes((PostgresProbe(writes.get()), RedisProbe(redis.get())))
    )
    container[HealthMonitor] = Singleton(
        lambda c: HealthMonitor(c[CheckHealth], interval=config.health_check_interval)
    )


def _add_models(
    container: Container, lifecycle: Lifecycle, config: AppConfig, *, reads_only: bool = False
) -> None:
    """``reads_only``: a process that never saves a model leaves MODEL_CACHE_DIR as it found it (the CLI
    must not leave an empty ``models`` folder in the user's working folder)."""
    from adapters.torch.model_manager import ModelManager
    from adapters.torch.video_model import TorchVideoModel

    async def open_models() -> ModelManager:
        manager = ModelManager(
            config.model_cache_dir, device=config.device, mixed_precision=config.mixed_precision
        )
        if reads_only:
            manager.load(None)  # the warm-up start() does, without creating the folder
        else:
            await manager.start()
        return manager

    async def close_models(manager: ModelManager) -> None:
        await manager.close()

    models = lifecycle.add("models", open_models, close_models)
    container[VideoModel] = lambda: TorchVideoModel(models.get(), version=config.model_version or None)
