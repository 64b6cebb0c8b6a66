"""``opusclip clip FILE``: the ProcessJob use case in-process, with progress bars and a summary table.

Paths are checked before any work (entrypoints.clip_paths). The work runs in a child process that dies
with this one and renders into a hidden staging folder; this process only watches it, so a stop signal,
a crash of the media libraries or the child being killed each end in one line, with the staging folder
removed and no process left. Clips are moved into place only when the whole job succeeded, so a failed
run never leaves partial output that looks complete.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from adapters.process_guard import (
    STOP_SIGNALS,
    Janitor,
    Stopped,
    ignore_stop_signals,
    run_supervised,
    stop_signals_raise,
)
from application.config import AppConfig
from application.process_job import ProcessJob, ProcessJobResult
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import JobFailed, OpusClipError
from domain.media import ClipOptions
from entrypoints.clip_paths import OUTPUTS, ClipPaths, Refused, check_paths, make_staging
from entrypoints.console import EXIT_INTERNAL, EXIT_USAGE, fail, progress_bars
from entrypoints.http.logging import configure_logging

EXIT_BAD_INPUT = EXIT_USAGE
REPORT = "clips.json"
_READY = "ready"  # in the staging folder: the finished clips and their report, as they will be published


def run_clip(config: AppConfig, args: argparse.Namespace) -> int:
    source = Path(args.file)
    captions = [c.strip() for c in args.captions.split(",") if c.strip()]
    try:
        options = ClipOptions(
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            max_clips=args.max_clips,
            aspect=args.aspect,
            caption_formats=captions,
            **_flags(args),
        )
    except (OpusClipError, ValueError) as error:
        return fail(getattr(error, "message", str(error)), EXIT_BAD_INPUT)

    with stop_signals_raise():
        try:
            paths = check_paths(source, Path(args.out) if args.out else Path(f"{source.stem}_clips"))
            with Janitor([paths.staging]):  # removes the staging folder should this process be SIGKILLed
                try:
                    make_staging(paths)
                    return _supervise(config, args, options, paths)
                finally:
                    shutil.rmtree(paths.staging, ignore_errors=True)
        except Refused as refused:
            return fail(refused.message, EXIT_BAD_INPUT)
        except Stopped as stopped:
            said = "interrupted" if stopped.signum == signal.SIGINT else f"stopped by {stopped}"
            return fail(f"{said}; no output written", 128 + stopped.signum)


def _supervise(config: AppConfig, args: argparse.Namespace, options: ClipOptions, paths: ClipPaths) -> int:
    work = functools.partial(_work, config, paths, options, show=not args.no_progress, verbose=args.verbose)
    ended = run_supervised(work)
    if ended.signum in STOP_SIGNALS:  # sent to the child alone
        raise Stopped(ended.signum)
    # The run is over: publishing (or tidying up after a failure the child reported) is not interrupted.
    ignore_stop_signals()
    if ended.signum == signal.SIGKILL:
        return fail("processing was killed (SIGKILL), most likely for lack of memory; no output written")
    if ended.signum is not None:
        return fail(f"processing crashed ({ended.signal_name}) on this file; no output written")
    if ended.status != 0:
        return ended.status or EXIT_INTERNAL  # the child said why
    _summary(_publish(paths), paths.out)
    return 0


def _work(config: AppConfig, paths: ClipPaths, options: ClipOptions, *, show: bool, verbose: bool) -> int:
    """In the child: the job, its clips and report staged in ``staging/ready``; the exit status."""
    # A creator sees progress bars and one line per problem; --verbose adds the service's logs.
    configure_logging(config.log_level if verbose else "critical", "console", stream=sys.stderr)
    try:
        _check_media(config, paths, options)
        result = asyncio.run(_process(config, paths, options, show=show))
        _stage(result, paths.staging / _READY, options)
    except JobFailed as error:
        if error.code == "internal_error":  # a bug, not the input: --verbose logs its traceback
            return fail(f"internal error: {error.message}", EXIT_INTERNAL)
        return fail(error.message, EXIT_BAD_INPUT)
    except OpusClipError as error:
        return fail(error.message, EXIT_BAD_INPUT)
    except Exception as error:  # a bug: one line, not a traceback; --verbose logs it
        return fail(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)
    return 0


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """--gap and --burn-captions where the parser defines them; ClipOptions' defaults otherwise."""
    return {name: getattr(args, name) for name in ("gap_seconds", "burn_captions") if hasattr(args, name)}


def _check_media(config: AppConfig, paths: ClipPaths, options: ClipOptions) -> None:
    """In a fraction of a second, before the models load: a file that is no usable video fails here."""
    from adapters.media.probe import MediaLimits, probe  # PyAV alone, not the analyzer's torch

    limits = MediaLimits(max_seconds=config.max_video_seconds, max_pixels=config.max_video_pixels)
    options.require_fits(probe(paths.source, limits).duration)


async def _process(
    config: AppConfig, paths: ClipPaths, options: ClipOptions, *, show: bool
) -> ProcessJobResult:
    # The service's adapters (torch, the recogniser, storage) load only in the child, once the file is known
    # to be a video.
    from entrypoints.bootstrap import build_local_container
    from entrypoints.lifecycle import Lifecycle

    container = build_local_container(config, media_root=paths.staging / "media")
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        submitted = await container[SubmitJob](
            SubmitJobRequest(owner="cli", source=str(paths.source), options=options.to_dict())
        )
        job = submitted.job
        with progress_bars(show=show) as bars:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, fraction: float) -> None:
                if stage not in tasks:
                    tasks[stage] = bars.add_task(stage, total=1.0)
                bars.update(tasks[stage], completed=min(1.0, max(0.0, fraction)))

            return await container[ProcessJob](job.id, progress)
    finally:
        await lifecycle.close()


def _stage(result: ProcessJobResult, ready: Path, options: ClipOptions) -> None:
    """The clips and captions under their published names in ``ready``, and the report last."""
    ready.mkdir()
    clips: list[dict[str, Any]] = []
    for rendered in result.clips:
        media = Path(rendered.media_path).name
        shutil.move(rendered.media_path, ready / media)
        captions = {}
        for fmt, path in sorted(rendered.captions.items()):
            captions[fmt] = Path(path).name
            shutil.move(path, ready / captions[fmt])
        clip = rendered.clip
        clips.append(
            {
                "rank": clip.rank,
                "start": round(clip.span.start, 3),
                "end": round(clip.span.end, 3),
                "duration": round(clip.span.duration, 3),
                "score": round(float(clip.score), 4),
                "title": clip.title,
                "text": clip.text,
                "file": media,
                "captions": captions,
                "words": [
                    {
                        "text": w.text,
                        "start": round(w.start, 3),
                        "end": round(w.end, 3),
                        "confidence": w.confidence,
                    }
                    for w in clip.words
                ],
            }
        )
    report = {
        "source": result.job.source,
        "sha256": result.video.sha256,
        "duration": result.info.duration,
        "model_version": result.model_version,
        "options": options.to_dict(),
        "clips": clips,
        "shot_cuts": [round(t, 3) for t in result.shot_cuts],
        "scores": [round(float(s), 4) for s in result.scores],
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "cache_hits": sorted(result.cache_hits),
    }
    (ready / REPORT).write_text(json.dumps(report, indent=2))


def _publish(paths: ClipPaths) -> dict[str, Any]:
    """Move the staged clips into --out, replacing an earlier run's; the report appears last, atomically.
    Nothing is written over the input, whatever happened to the folder since the run began."""
    ready, out = paths.staging / _READY, paths.out
    report: dict[str, Any] = json.loads((ready / REPORT).read_text())
    out.mkdir(parents=True, exist_ok=True)
    old = [path for pattern in OUTPUTS for path in out.glob(pattern)]
    made = sorted(path.name for path in ready.iterdir() if path.name != REPORT)
    paths.guard([*old, *(out / name for name in made)])
    for path in old:
        if path.name != REPORT:
            path.unlink()
    for name in made:
        shutil.move(ready / name, out / name)
    shutil.move(ready / REPORT, out / REPORT)
    return report


def _summary(report: dict[str, Any], out: Path) -> None:
    table = Table(title=f"{len(report['clips'])} clips from {Path(report['source']).name}")
    for column in ("#", "start", "end", "length", "score", "title", "file"):
        table.add_column(column)
    for clip in report["clips"]:
        table.add_row(
            str(clip["rank"]),
            _clock(clip["start"]),
            _clock(clip["end"]),
            f"{clip['duration']:.1f}s",
            f"{clip['score']:.3f}",
            clip["title"],
            clip["file"],
        )
    console = Console(file=sys.stdout)
    console.print(table)
    console.print(f"Clips, captions and clips.json are in {out}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:04.1f}"
