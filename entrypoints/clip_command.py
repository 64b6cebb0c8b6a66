"""``opusclip clip FILE``: the ProcessJob use case in-process, with progress bars and a summary table.

Clips are rendered into a hidden staging folder next to the output and moved into place only when the
whole job succeeded, so a failed run never leaves partial output that looks complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from application.config import AppConfig
from application.process_job import ProcessJob, ProcessJobResult
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import JobFailed, OpusClipError
from domain.media import ClipOptions
from entrypoints.bootstrap import build_local_container
from entrypoints.console import EXIT_INTERNAL, EXIT_USAGE, fail
from entrypoints.http.logging import configure_logging
from entrypoints.lifecycle import Lifecycle

EXIT_BAD_INPUT = EXIT_USAGE


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

    out = Path(args.out) if args.out else Path.cwd() / f"{source.stem}_clips"
    if out.exists() and not out.is_dir():
        return fail(f"--out {out} exists and is not a folder", EXIT_BAD_INPUT)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return fail(f"--out {out}: cannot create its folder ({error.strerror})", EXIT_BAD_INPUT)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    # A creator sees progress bars and one line per problem; --verbose adds the service's logs.
    configure_logging(config.log_level if args.verbose else "critical", "console", stream=sys.stderr)
    try:
        result = asyncio.run(_process(config, str(source), options, staging, show=not args.no_progress))
        report = _publish(result, out, options)
    except JobFailed as error:
        if error.code == "internal_error":  # a bug, not the input: --verbose logs its traceback
            return fail(f"internal error: {error.message}", EXIT_INTERNAL)
        return fail(error.message, EXIT_BAD_INPUT)
    except OpusClipError as error:
        return fail(error.message, EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return fail("interrupted; no output written", 130)
    except Exception as error:  # a bug: one line, not a traceback; --verbose logs it
        return fail(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _summary(report, out)
    return 0


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """--gap and --burn-captions where the parser defines them; ClipOptions' defaults otherwise."""
    return {name: getattr(args, name) for name in ("gap_seconds", "burn_captions") if hasattr(args, name)}


async def _process(
    config: AppConfig, source: str, options: ClipOptions, staging: Path, *, show: bool
) -> ProcessJobResult:
    container = build_local_container(config, media_root=staging)
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        submitted = await container[SubmitJob](
            SubmitJobRequest(owner="cli", source=source, options=options.to_dict())
        )
        job = submitted.job
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not show,
            transient=False,
        ) as bars:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, fraction: float) -> None:
                if stage not in tasks:
                    tasks[stage] = bars.add_task(stage, total=1.0)
                bars.update(tasks[stage], completed=min(1.0, max(0.0, fraction)))

            return await container[ProcessJob](job.id, progress)
    finally:
        await lifecycle.close()


def _publish(result: ProcessJobResult, out: Path, options: ClipOptions) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("clip_*.mp4"), *out.glob("clip_*.srt"), *out.glob("clip_*.vtt")]:
        old.unlink()
    clips: list[dict[str, Any]] = []
    for rendered in result.clips:
        media = out / Path(rendered.media_path).name
        shutil.move(rendered.media_path, media)
        captions = {}
        for fmt, path in sorted(rendered.captions.items()):
            target = out / Path(path).name
            shutil.move(path, target)
            captions[fmt] = target.name
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
                "file": media.name,
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
    partial = out / ".clips.json.partial"
    partial.write_text(json.dumps(report, indent=2))
    partial.replace(out / "clips.json")  # the report appears last, and atomically
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
