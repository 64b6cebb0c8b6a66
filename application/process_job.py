"""ProcessJob: one queued job's video in, ranked rendered clips out, through ports only.

fetch → probe → analyse → transcribe → score → select → render → save. Analysis and transcript are
cached under the file's sha256 and each component's version, so a re-run with other options skips decoding.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import attrs
import numpy as np

from application.job_attempt import JobAttempt, JobRunPolicy
from application.job_scores import SCORES_DETAIL, write_scores
from application.models import served_version
from domain.codec import decode_analysis, decode_transcript, encode_analysis, encode_transcript
from domain.errors import JobCancelled, JobFailed, LeaseLost, NotFound, OpusClipError, RetryScheduled
from domain.features import FEATURES_TTL_SECONDS, encode_features, feature_matrix, features_key
from domain.jobs import Job, JobStatus, StoredClip, Video, new_id
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
    """Runs one attempt at a job end to end.

    The attempt claims the job (a queued one, or a running one whose lease ran out), keeps its lease alive
    while it works, checks for cancellation at every stage boundary and writes its results only while it
    still holds the job. A failure is settled on the job: retried later (``RetryScheduled``) when another
    attempt may succeed and attempts are left, otherwise failed with the error's code and reason
    (``JobFailed``, raised from the original error).
    """

    fetcher: MediaFetcher
    analyzer: MediaAnalyzer
    transcriber: Transcriber
    model: VideoModel
    renderer: ClipRenderer
    store: MediaStore
    cache: Cache
    uow: UnitOfWorkFactory
    policy: JobRunPolicy

    async def __call__(
        self, job_id: str, progress: StageProgress = _ignore, *, worker: str = "local"
    ) -> ProcessJobResult:
        attempt = JobAttempt(job_id, new_id(), self.uow, self.policy)
        job = await self._claim(attempt, worker)

        def report(stage: str, fraction: float) -> None:
            attempt.progress(stage, fraction)
            progress(stage, fraction)

        work_dir = self.store.clip_dir(job.id) / attempt.token
        succeeded = False
        try:
            async with attempt.kept_alive():
                result = await self._run(job, attempt, report, work_dir)
            succeeded = True
        except asyncio.CancelledError:
            # The worker is shutting down past its grace period: hand the job back for another worker.
            await asyncio.shield(self._release(attempt))
            raise
        except LeaseLost:
            log.warning("job.lease_lost", extra={"job_id": job.id, "token": attempt.token})
            raise
        except JobCancelled:
            await attempt.write(lambda stored, now: stored.acknowledge_cancel(attempt.token, now))
            log.info("job.cancelled", extra={"job_id": job.id})
            raise
        except Exception as error:
            await self._settle(attempt, job, error)
        finally:
            _tidy(work_dir, keep=succeeded)
        return result

    async def _claim(self, attempt: JobAttempt, worker: str) -> Job:
        async with self.uow() as uow:
            job = await uow.jobs.get(attempt.job_id, for_update=True)
            if job is None:
                raise NotFound(f"job {attempt.job_id} does not exist")
            now = await uow.now()
            job.claim(attempt.token, worker, now, self.policy.lease)
            if job.cancel_requested:
                # Its last attempt died while the job was being cancelled: finish the cancellation.
                job.acknowledge_cancel(attempt.token, now)
            await uow.jobs.update(job)
            await uow.commit()
        if job.status is JobStatus.CANCELLED:
            raise JobCancelled(f"job {job.id} was cancelled")
        log.info("job.claimed", extra={"job_id": job.id, "attempt": job.attempts, "worker": worker})
        return job

    async def _run(
        self, job: Job, attempt: JobAttempt, progress: StageProgress, work_dir: Path
    ) -> ProcessJobResult:
        options = ClipOptions.from_dict(job.options)
        timings: dict[str, float] = {}
        hits: set[str] = set()
        # Chosen once, as the attempt starts: a promotion while it runs takes effect from the next job.
        model = self.model.using(await served_version(self.uow, self.policy.model_pin))

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
            await attempt.checkpoint(name)
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
        await attempt.checkpoint("fetch")
        fetched: FetchedMedia = await self.fetcher.fetch(job.source)
        try:
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

            await attempt.checkpoint("score")
            model_version = model.version
            # Built once: the model scores it, and training learns from it later (kept past the analysis
            # cache's expiry, so ratings given weeks on can still use it).
            matrix = feature_matrix(analysis, transcript)
            scores: np.ndarray = await timed("score", model.score_features, matrix)
            await self.cache.set(features_key(fetched.sha256), encode_features(matrix), FEATURES_TTL_SECONDS)
            await attempt.checkpoint("select")
            clips = await timed("select", _select, scores, transcript, analysis, options)

            await attempt.checkpoint("render")
            await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
            rendered: list[RenderedClip] = []
            started = time.perf_counter()
            for index, clip in enumerate(clips):

                def clip_progress(fraction: float, index: int = index) -> None:
                    progress("render", (index + fraction) / max(1, len(clips)))

                attempt.raise_if_stopped()
                rendered.append(
                    await asyncio.to_thread(
                        self.renderer.render, fetched.path, info, clip, options, work_dir, clip_progress
                    )
                )
            progress("render", 1.0)
            timings["render"] = time.perf_counter() - started
        finally:
            if fetched.temporary:
                fetched.path.unlink(missing_ok=True)

        await attempt.checkpoint("save")
        # In the attempt's own folder: the job names it only if this attempt's fenced save commits.
        scores_file = await asyncio.to_thread(write_scores, work_dir, scores)
        details = {
            "model_version": model_version,
            "cache_hits": sorted(hits),
            "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
            "clips": len(rendered),
            "sha256": fetched.sha256,
            SCORES_DETAIL: scores_file.relative_to(work_dir.parent).as_posix(),
        }
        video = await self._save(attempt, job, fetched, info, rendered, model_version, details)
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
            model_version=model_version,
            cache_hits=frozenset(hits),
            timings=timings,
        )

    async def _save(
        self,
        attempt: JobAttempt,
        job: Job,
        fetched: FetchedMedia,
        info: MediaInfo,
        rendered: list[RenderedClip],
        model_version: str,
        details: dict[str, Any],
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
            stored = await uow.jobs.get(job.id, for_update=True)
            if stored is None:
                raise NotFound(f"job {job.id} does not exist")
            now = await uow.now()
            if stored.lease_token == attempt.token:
                stored.succeed(attempt.token, video.id, details, now)
            await attempt.store(uow, stored)  # the fence comes before the clips: late results never land
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
                        model_version=model_version,
                    )
                    for r in rendered
                ]
            )
            await uow.commit()
        job.status, job.video_id, job.details = JobStatus.SUCCEEDED, video.id, details
        return video

    async def _settle(self, attempt: JobAttempt, job: Job, error: Exception) -> NoReturn:
        """Record a failed attempt on the job: queued again (``RetryScheduled``) while another attempt may
        succeed, failed for good (``JobFailed``, from the original error) otherwise."""
        if isinstance(error, OpusClipError):
            code, message = error.code, error.message
        else:
            log.exception("job.crashed", extra={"job_id": job.id})
            code, message = "internal_error", f"{type(error).__name__}: {error}"
        retry = self.policy.retry
        if retry.should_retry(error, job.attempts):
            await self._record(attempt, lambda stored, now: stored.retry(attempt.token, code, message, now))
            delay = retry.delay(job.attempts)
            log.info("job.retry_scheduled", extra={"job_id": job.id, "code": code, "delay": delay})
            raise RetryScheduled(message, delay, code) from error
        await self._record(attempt, lambda stored, now: stored.fail(attempt.token, code, message, now))
        log.info("job.failed", extra={"job_id": job.id, "code": code, "attempts": job.attempts})
        raise JobFailed(message, code) from error

    @staticmethod
    async def _record(attempt: JobAttempt, change: Callable[[Job, datetime], None]) -> None:
        try:
            await attempt.write(change)
        except LeaseLost:
            raise
        except Exception:
            # Recording the outcome must not hide the error itself: the lease runs out and the sweeper
            # queues the job again, so nothing is lost.
            log.exception("job.outcome_not_recorded", extra={"job_id": attempt.job_id})

    async def _release(self, attempt: JobAttempt) -> None:
        try:
            await attempt.write(lambda stored, now: stored.release(attempt.token, now))
            log.info("job.released", extra={"job_id": attempt.job_id})
        except Exception:
            log.warning("job.release_failed", extra={"job_id": attempt.job_id}, exc_info=True)


def _tidy(work_dir: Path, *, keep: bool) -> None:
    """A finished attempt keeps its own files and drops any left by earlier attempts of the job (they
    lost the job, so nothing refers to them); an attempt that did not finish drops its own."""
    if not work_dir.parent.is_dir():
        return
    doomed = [p for p in work_dir.parent.iterdir() if p != work_dir] if keep else [work_dir]
    for path in doomed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


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
