"""``opusclip transcribe FILE``: what is said in a video or audio file, as text, JSON, SRT or WebVTT.

The Transcriber port in this process, on any file with an audio stream (audio-only ones too, which
``clip`` refuses). Times are the source's media time. Output goes to stdout, or to ``--out``, a new file:
an existing one is never overwritten.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from application.config import AppConfig
from domain.captions import to_srt, to_vtt
from domain.errors import OpusClipError
from domain.media import Analysis, MediaInfo, Transcript
from domain.ports import Transcriber
from entrypoints.console import EXIT_INTERNAL, EXIT_USAGE, fail, progress_bars

FORMATS = ("txt", "json", "srt", "vtt")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "transcribe", help="the words spoken in a video or audio file, with their times"
    )
    command.add_argument("file")
    command.add_argument("--format", default="txt", help=f"{', '.join(FORMATS)} (default: txt)")
    command.add_argument("--out", default=None, help="write to this new file instead of stdout")
    command.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    command.add_argument("--verbose", action="store_true", help="log to stderr at LOG_LEVEL")


def run(config: AppConfig, args: argparse.Namespace) -> int:
    fmt = args.format.strip().lower()
    if fmt not in FORMATS:
        return fail(f"--format {args.format!r} is not one of {', '.join(FORMATS)}")
    out = Path(args.out) if args.out else None
    if out is not None and (out.exists() or out.is_symlink()):
        return fail(f"--out {out} already exists; transcribe never overwrites a file")
    if out is not None and not out.parent.is_dir():
        return fail(f"--out {out}: no folder {out.parent}")

    from adapters.speech.audio import audio_analysis
    from entrypoints.http.logging import configure_logging

    configure_logging(config.log_level if args.verbose else "critical", "console", stream=sys.stderr)
    show = sys.stderr.isatty() and not args.no_progress
    try:
        analysis = audio_analysis(Path(args.file))  # a file with nothing to hear fails before the model loads
        transcript = asyncio.run(_transcribe(config, Path(args.file), analysis, show=show))
    except OpusClipError as error:
        return fail(error.message, EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted; no output written", 130)
    except Exception as error:  # a bug: one line, not a traceback; --verbose logs it
        return fail(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)

    text = render(fmt, transcript, analysis.info)
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        with out.open("x", encoding="utf-8") as file:  # "x": refuses a file that appeared meanwhile
            file.write(text)
    except FileExistsError:
        return fail(f"--out {out} already exists; transcribe never overwrites a file")
    except OSError as error:
        return fail(f"--out {out}: cannot write it ({error.strerror})")
    return 0


async def _transcribe(config: AppConfig, source: Path, analysis: Analysis, *, show: bool) -> Transcript:

    from entrypoints.bootstrap import build_speech_container
    from entrypoints.lifecycle import Lifecycle

    container = build_speech_container(config)
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        with progress_bars(show=show) as bars:
            task = bars.add_task("transcribe", total=1.0)

            def report(fraction: float) -> None:
                bars.update(task, completed=min(1.0, max(0.0, fraction)))

            transcriber = container[Transcriber]  # type: ignore[type-abstract]  # Lagom keys ports, Protocols
            return await asyncio.to_thread(transcriber.transcribe, source, analysis, report)
    finally:
        await lifecycle.close()


def render(fmt: str, transcript: Transcript, info: MediaInfo) -> str:
    if fmt == "json":
        return json.dumps(as_json(transcript, info), ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        return to_srt(transcript.words)
    if fmt == "vtt":
        return to_vtt(transcript.words)
    lines = [segment.text for segment in transcript.segments] or [transcript.text]
    return "\n".join(line for line in lines if line) + "\n"


def as_json(transcript: Transcript, info: MediaInfo) -> dict[str, object]:
    return {
        "duration": round(info.duration, 3),
        "language": transcript.language,
        "segments": [
            {"text": s.text, "start": round(s.start, 3), "end": round(s.end, 3)} for s in transcript.segments
        ],
        "words": [
            {
                "text": w.text,
                "start": round(w.start, 3),
                "end": round(w.end, 3),
                "confidence": round(w.confidence, 3),
            }
            for w in transcript.words
        ],
    }
