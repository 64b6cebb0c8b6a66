"""ProcessJob: one queued job's video in, ranked rendered clips out, through ports only.

fetch → probe → analyse → transcribe → score → select → render → save. Analysis and transcript are
cached under the file's sha256 and each component's version, so a re-run with other options skips decoding.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from domain.codec import decode_analysis, decode_transcript, encode_analysis, encode_transcript
from domain.errors import NotFound, OpusClipError
from domain.jobs import Job, JobStatus, StoredClip, Video, new_id, utcnow
from domain.media import Analysis, ClipOptions, MediaInfo, RenderedClip, Transcript
from domain.ports import (
    Cache,
    ClipRenderer,
    FetchedMedia,
    MediaAnalyzer,
    MediaFetcher,
    MediaStore,
    Transcriber,
    UnitOfWorkFactory,
    VideoModel,
)
from domain.selection import select_clips

# stdlib logging: the application layer depends on no logging library; entrypoints render it.
log = logging.getLogger(__name__)

# (stage, fraction of that stage done in [0, 1])
StageProgress = Callable[[str, float], None]
STAGES: tuple[str, ...] = ("fetch", "analyse", "transcribe", "score", "select", "render", "save")


def _ignore(_stage: str, _fraction: float) -> None:
    return None


@attrs.frozen
class _Codec:
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]  # None for bytes of another format: a miss


_ANALYSIS = _Codec(encode_analysis, decode_analysis)
_TRANSCRIPT = _Codec(encode_transcript, decode_transcript)


@attrs.frozen
class ProcessJobResult:
    job: Job
    video: Video
    info: MediaInfo
    clips: tuple[RenderedClip, ...]
    scores: np.ndarray
    shot_cuts: tuple[float, ...]
    transcript: Transcript
    model_version: str
    cache_hits: frozenset[str]
    timings: dict[str, float]


@attrs.frozen
class ProcessJob:
    """Runs a job end to end; a failure is recorded on the job (code and reason) and then re-raised."""

    fetcher: MediaFetcher
    analyzer: MediaAnalyzer
    transcriber: Transcriber
    model: VideoModel
    renderer: ClipRenderer
    store: MediaStore
    cache: Cache
    uow: UnitOfWorkFactory

    async def __call__(self, job_id: str, progress: StageProgress = _ignore) -> ProcessJobResult:
        job = await self._load(job_id)
        try:
            result = await self._run(job, progress)
        except OpusClipError as error:
            await self._fail(job, error.code, error.message)
            raise
        except Exception as error:
            log.exception("job.crashed", extra={"job_id": job.id})
            await self._fail(job, "internal_error", f"{type(error).__name__}: {error}")
            raise
        return result

    async def _load(self, job_id: str) -> Job:
        async with self.uow() as uow:
            job = await uow.jobs.get(job_id)
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            job.status, job.stage, job.progress, job.updated_at = JobStatus.RUNNING, STAGES[0], 0.0, utcnow()
            await uow.jobs.update(job)
            await uow.commit()
        return job

    async def _run(self, job: Job, progress: StageProgress) -> ProcessJobResult:
        options = ClipOptions.from_dict(job.options)
        timings: dict[str, float] = {}
        hits: set[str] = set()

        def stage(name: str) -> Callable[[float], None]:
            return lambda fraction: progress(name, fraction)

        async def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:  # runs ``fn`` in a thread
            started = time.perf_counter()
            progress(name, 0.0)
            value = await asyncio.to_thread(fn, *args)
            progress(name, 1.0)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            return value

        async def cached(name: str, key: str, codec: _Codec, *args: Any) -> Any:
            """A stage's result from the cache, or computed by ``args`` and stored."""
            data = await self.cache.get(key)
            value = None if data is None else codec.decode(data)
            if value is not None:
                hits.add(name)
                progress(name, 1.0)
                return value
            value = await timed(name, *args, stage(name))
            await self.cache.set(key, codec.encode(value))
            return value

        # No progress is reported before the input is known to be usable media: a bad file is one error line.
        started = time.perf_counter()
        fetched: FetchedMedia = await asyncio.to_thread(self.fetcher.fetch, job.source)
        info: MediaInfo = await asyncio.to_thread(self.analyzer.probe, fetched.path)
        options.require_fits(info.duration)
        timings["fetch"] = time.perf_counter() - started
        progress("fetch", 1.0)

        analysis: Analysis = await cached(
            "analyse",
            f"analysis:{fetched.sha256}:{self.analyzer.version}",
            _ANALYSIS,
            self.analyzer.analyze,
            fetched.path,
            info,
        )
        transcript: Transcript = await cached(
            "transcribe",
            f"transcript:{fetched.sha256}:{self.transcriber.version}:{self.analyzer.version}",
            _TRANSCRIPT,
            self.transcriber.transcribe,
            fetched.path,
            analysis,
        )

        scores: np.ndarray = await timed("score", self.model.score, analysis, transcript)
        clips = await timed("select", _select, scores, transcript, analysis, options)

        out_dir = self.store.clip_dir(job.id)
        rendered: list[RenderedClip] = []
        started = time.perf_counter()
        for index, clip in enumerate(clips):

            def clip_progress(fraction: float, index: int = index) -> None:
                progress("render", (index + fraction) / max(1, len(clips)))

            rendered.append(
                await asyncio.to_thread(
                    self.renderer.render, fetched.path, info, clip, options, out_dir, clip_progress
                )
            )
        progress("render", 1.0)
        timings["render"] = time.perf_counter() - started

        progress("save", 0.0)
        video = await self._save(job, fetched, info, rendered)
        progress("save", 1.0)
        log.info(
            "job.succeeded",
            extra={"job_id": job.id, "clips": len(rendered), "cache_hits": sorted(hits), "seconds": timings},
        )
        return ProcessJobResult(
            job=job,
            video=video,
            info=info,
            clips=tuple(rendered),
            scores=scores,
            shot_cuts=analysis.shot_cuts,
            transcript=transcript,
            model_version=self.model.version,
            cache_hits=frozenset(hits),
            timings=timings,
        )

    async def _save(
        self, job: Job, fetched: FetchedMedia, info: MediaInfo, rendered: list[RenderedClip]
    ) -> Video:
        async with self.uow() as uow:
            video = await uow.videos.by_sha256(fetched.sha256)
            if video is None:
                video = Video(
                    id=new_id(),
                    sha256=fetched.sha256,
                    source=job.source,
                    duration=info.duration,
                    width=info.width,
                    height=info.height,
                    fps=info.fps,
                    has_audio=info.has_audio,
                    size_bytes=fetched.size_bytes,
                )
                await uow.videos.add(video)
            await uow.clips.add_many(
                [
                    StoredClip(
                        id=new_id(),
                        job_id=job.id,
                        video_id=video.id,
                        rank=r.clip.rank,
                        start=r.clip.span.start,
                        end=r.clip.span.end,
                        score=r.clip.score,
                        title=r.clip.title,
                        transcript=r.clip.text,
                        media_path=r.media_path,
                        captions=dict(r.captions),
                        model_version=self.model.version,
                    )
                    for r in rendered
                ]
            )
            job.status, job.stage, job.progress = JobStatus.SUCCEEDED, "done", 1.0
            job.video_id, job.updated_at = video.id, utcnow()
            await uow.jobs.update(job)
            await uow.commit()
        return video

    async def _fail(self, job: Job, code: str, message: str) -> None:
        try:
            async with self.uow() as uow:
                job.status, job.error_code, job.error, job.updated_at = (
                    JobStatus.FAILED,
                    code,
                    message,
                    utcnow(),
                )
                await uow.jobs.update(job)
                await uow.commit()
        except Exception:
            # Recording the failure must not hide the original error.
            log.exception("job.fail_not_recorded", extra={"job_id": job.id})


def _select(
    scores: np.ndarray, transcript: Transcript, analysis: Analysis, options: ClipOptions
) -> list[Any]:
    return list(
        select_clips(
            scores,
            transcript,
            shot_cuts=analysis.shot_cuts,
            speech=analysis.speech,
            duration=analysis.info.duration,
            options=options,
        )
    )
