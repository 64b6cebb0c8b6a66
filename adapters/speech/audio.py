"""A file's main audio stream as 16 kHz mono int16, streamed in blocks, with its media time (the stream the
analysis heard and the clips carry: adapters.media.decoding.main_audio)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from adapters.media.decoding import PacketDecoder, main_audio
from adapters.media.timeline import timeline
from adapters.speech.vad import SAMPLE_RATE
from domain.errors import MediaError
from domain.media import MEDIA_FEATURES, Analysis, MediaInfo


def audio_start(path: Path) -> float | None:
    """The file's own timestamp of its first audio sample (seconds), or None without an audio stream."""
    try:
        with av.open(str(path)) as container:
            stream = main_audio(container)
            if stream is None:
                return None
            for frame in PacketDecoder(path.name).frames(timeline(container).demux(container, stream)):
                if frame.time is not None:
                    return float(frame.time)
            return 0.0
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(f"cannot open {path.name}: {error}") from None


def has_audio(path: Path) -> bool:
    return audio_start(path) is not None


def probe_audio(path: Path) -> MediaInfo:
    """What a transcript needs to know of any media file, audio-only ones included (the video analyzer
    refuses those): its duration and where media time 0 is. MediaError, in one line, for a missing or
    empty file, one that is not media, and one with nothing to hear."""
    if not path.is_file():
        raise MediaError(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name}: file is empty")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise MediaError(f"{path.name}: not a media file (or a damaged one)") from None
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path.name}: no audio stream, so nothing to transcribe")
        audio = main_audio(container)
        if audio is None:
            raise MediaError(f"{path.name}: no audio stream, so nothing to transcribe")
        video = next(iter(container.streams.video), None)
        duration = container.duration / av.time_base if container.duration is not None else 0.0
        if duration <= 0 and audio.duration is not None and audio.time_base is not None:
            duration = float(audio.duration * audio.time_base)
        return MediaInfo(
            duration=max(0.0, duration),
            width=video.codec_context.width if video is not None else 0,
            height=video.codec_context.height if video is not None else 0,
            fps=float(video.average_rate or 0) if video is not None else 0.0,
            video_codec=video.codec_context.name if video is not None else "",
            audio_codec=audio.codec_context.name,
            has_audio=True,
            size_bytes=path.stat().st_size,
            format_name=container.format.name,
            start_time=container.start_time / av.time_base if container.start_time is not None else 0.0,
        )


def audio_analysis(path: Path) -> Analysis:
    """An Analysis for transcribing a file that has none (no video analysis: an audio file, or a video
    transcribed alone): its media facts, no per-second features, and no speech segments, which leaves
    finding speech to the transcriber."""
    info = probe_audio(path)
    return Analysis(info, MEDIA_FEATURES, np.zeros((0, len(MEDIA_FEATURES)), np.float32), (), ())


def stream_audio(path: Path, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """The main audio stream as 16 kHz mono int16, in blocks of about ``block_seconds``; never whole:
    four hours of it would be 460 MB."""
    block = int(block_seconds * SAMPLE_RATE)
    try:
        with av.open(str(path)) as container:
            stream = main_audio(container)
            if stream is None:
                return
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            parts: list[np.ndarray] = []
            size = 0
            for frame in PacketDecoder(path.name).frames(timeline(container).demux(container, stream)):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().ravel())
                    size += parts[-1].size
                if size >= block:
                    yield np.concatenate(parts).astype(np.int16)
                    parts, size = [], 0
            parts.extend(out.to_ndarray().ravel() for out in resampler.resample(None))
            if parts:
                yield np.concatenate(parts).astype(np.int16)
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(f"cannot decode the audio of {path.name}: {error}") from None


def decode_audio(path: Path) -> np.ndarray | None:
    """All of the main audio stream (for short files and tests), or None when there is none."""
    if not has_audio(path):
        return None
    blocks = list(stream_audio(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.int16)
