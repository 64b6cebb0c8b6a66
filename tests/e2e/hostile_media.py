"""Unusual and broken inputs for the CLI's corpus test, written with PyAV: small and quick to make.

Every video frame carries its time on the media clock (milliseconds from the first frame, as players
count) in a row of black and white blocks across its top, so a clip's picture can be checked against the
span its listing names.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import av
import numpy as np

from adapters.media.synthetic import SPEECH_RATE, speak

STAMP_BITS = 20  # milliseconds: up to 17 minutes
_COLOURS = ((40, 60, 120), (200, 80, 40), (30, 140, 70), (150, 40, 150), (220, 200, 60))


@attrs.frozen
class Video:
    size: tuple[int, int] = (320, 180)
    fps: float = 25.0
    seconds: float = 6.0
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = attrs.field(factory=lambda: {"preset": "ultrafast"})
    vfr: bool = False
    default: bool = True

    @property
    def stamped(self) -> bool:
        return self.size[0] >= 120 and self.size[1] >= 40


@attrs.frozen
class Audio:
    seconds: float = 6.0
    codec: str = "aac"
    layout: str = "stereo"
    rate: int = 48_000
    sound: str = "tone"  # tone (300 Hz), noise, silence or speech
    default: bool = True


def stamp(picture: np.ndarray, ms: int) -> None:
    height, width = picture.shape[:2]
    bar = max(4, height // 6)
    for bit in range(STAMP_BITS):
        left, right = bit * width // STAMP_BITS, (bit + 1) * width // STAMP_BITS
        picture[:bar, left:right] = 255 if ms >> bit & 1 else 0


def read_stamp(picture: np.ndarray) -> int:
    """The milliseconds stamped on an rgb24 picture (of any size the stamped one was scaled to)."""
    grey = picture.astype(np.float32).mean(axis=2)
    height, width = grey.shape
    row = max(4, height // 6) // 2
    bits = [grey[row, int((bit + 0.5) * width / STAMP_BITS)] > 128 for bit in range(STAMP_BITS)]
    return sum(1 << bit for bit, on in enumerate(bits) if on)


def write(
    path: Path,
    videos: Sequence[Video] = (Video(),),
    audios: Sequence[Audio] = (Audio(),),
    *,
    container_format: str | None = None,
    offset: float = 0.0,
    stamp_from: float = 0.0,
    options: dict[str, str] | None = None,
) -> Path:
    """Streams written interleaved by time. ``offset``: seconds added to every timestamp in the file (as
    ffmpeg's -output_ts_offset); ``stamp_from``: the media-clock time of the first frame, for the second
    half of a file joined from two."""
    muxer = dict(options or {})
    if offset:
        muxer["output_ts_offset"] = f"{offset:g}"
    with av.open(str(path), "w", format=container_format, options=muxer) as out:
        sources: list[Iterator[tuple[float, int, Any, Any]]] = []
        for index, spec in enumerate(videos):
            stream = _video_stream(out, spec)
            sources.append(_video_frames(spec, stream, index, stamp_from))
        for index, spec in enumerate(audios, start=len(videos)):
            stream = out.add_stream(spec.codec, rate=spec.rate, layout=spec.layout)
            if not spec.default:
                stream.disposition = av.stream.Disposition(0)
            sources.append(_audio_frames(spec, stream, index))
        streams = []
        for _, _, stream, frame in heapq.merge(*sources, key=lambda item: (item[0], item[1])):
            out.mux(stream.encode(frame))
            if stream not in streams:
                streams.append(stream)
        for stream in streams:
            out.mux(stream.encode(None))
    return path


def _video_stream(out: av.container.OutputContainer, spec: Video) -> Any:
    whole = not spec.vfr and float(spec.fps).is_integer()
    time_base = Fraction(1, int(spec.fps)) if whole else Fraction(1, 1000)
    options = spec.options if spec.codec == "libx264" else {}
    stream = out.add_stream(spec.codec, rate=Fraction(spec.fps).limit_denominator(1000), options=options)
    stream.width, stream.height = spec.size
    stream.pix_fmt = spec.pix_fmt
    stream.codec_context.time_base = time_base
    stream.time_base = time_base
    if not spec.default:
        stream.disposition = av.stream.Disposition(0)
    return stream


def _frame_times(spec: Video) -> Iterator[float]:
    rng = np.random.default_rng(3)
    t = 0.0
    while t < spec.seconds - 1e-9:
        yield t
        t += (float(rng.uniform(0.4, 1.6)) if spec.vfr else 1.0) / spec.fps


def _video_frames(
    spec: Video, stream: Any, index: int, stamp_from: float
) -> Iterator[tuple[float, int, Any, Any]]:
    width, height = spec.size
    for t in _frame_times(spec):
        picture = np.empty((height, width, 3), np.uint8)
        picture[:] = _COLOURS[int(t // 2) % len(_COLOURS)]  # a cut every two seconds
        side = max(1, min(width, height) // 4)
        x = int((t * 0.3 % 1.0) * max(1, width - side))
        picture[height // 2 : height // 2 + side, x : x + side] = 255
        if spec.stamped:
            stamp(picture, round((t + stamp_from) * 1000))
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = round(t / stream.codec_context.time_base)
        frame.time_base = stream.codec_context.time_base
        yield t, index, stream, frame


def _mono(spec: Audio) -> tuple[np.ndarray, int]:
    if spec.sound == "speech":
        parts = [speak(text) for text in ("Here is the secret.", "Start before you feel ready, every day.")]
        pause = np.zeros(SPEECH_RATE // 2, np.float32)
        voice = np.concatenate([pause, parts[0], pause, parts[1], pause])
        total = int(spec.seconds * SPEECH_RATE)
        return np.resize(voice, total) if voice.size < total else voice[:total], SPEECH_RATE
    n = int(spec.seconds * spec.rate)
    if spec.sound == "silence":
        return np.zeros(n, np.float32), spec.rate
    if spec.sound == "noise":
        return (np.random.default_rng(5).standard_normal(n) * 0.2).astype(np.float32), spec.rate
    t = np.arange(n, dtype=np.float32) / spec.rate
    return (0.3 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32), spec.rate


def _audio_frames(spec: Audio, stream: Any, index: int) -> Iterator[tuple[float, int, Any, Any]]:
    samples, rate = _mono(spec)
    context = stream.codec_context
    resampler = av.AudioResampler(
        context.format, spec.layout, spec.rate, frame_size=context.frame_size or None
    )
    block = 1024
    for start in range(0, samples.size, block):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + block], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for chunk in resampler.resample(frame):
            yield start / rate, index, stream, chunk
    for chunk in resampler.resample(None):
        yield samples.size / rate, index, stream, chunk


def picture(path: Path, codec: str, size: tuple[int, int] = (320, 180), frames: int = 1, **opts: str) -> Path:
    """A still image (png, mjpeg) or an animation (gif, webp) of ``frames`` pictures."""
    container_format = {"png": "image2", "mjpeg": "image2", "gif": "gif", "libwebp_anim": "webp"}[codec]
    pix_fmt = {"png": "rgb24", "mjpeg": "yuvj420p", "gif": "rgb8", "libwebp_anim": "yuv420p"}[codec]
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=10, options=opts)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        for i in range(frames):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            image[:] = _COLOURS[i % len(_COLOURS)]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def cover_art_audio(path: Path, seconds: float = 6.0) -> Path:
    """An mp3 file with a png as attached picture: music with its artwork, no video."""
    with av.open(str(path), "w", format="mp3") as out:
        art = out.add_stream("png", rate=1)
        art.width, art.height, art.pix_fmt = 160, 160, "rgb24"
        art.disposition = av.stream.Disposition.attached_pic
        sound = out.add_stream("libmp3lame", rate=44_100, layout="stereo")
        image = av.VideoFrame.from_ndarray(np.full((160, 160, 3), 90, np.uint8), format="rgb24")
        image.pts = 0
        for packet in art.encode(image):
            out.mux(packet)
        for _, _, stream, frame in _audio_frames(Audio(seconds, "libmp3lame", rate=44_100), sound, 1):
            out.mux(stream.encode(frame))
        out.mux(sound.encode(None))
        out.mux(art.encode(None))
    return path


def declared_but_empty(path: Path, empty: str) -> Path:
    """A matroska file declaring a video and an audio stream, with no packet at all for ``empty``."""
    with av.open(str(path), "w", format="matroska") as out:
        video = _video_stream(out, Video())
        audio = out.add_stream("aac", rate=48_000, layout="stereo")
        if empty == "audio":
            frames = _video_frames(Video(), video, 0, 0.0)
        else:
            frames = _audio_frames(Audio(), audio, 1)
        kept = video if empty == "audio" else audio
        for _, _, stream, frame in frames:
            out.mux(stream.encode(frame))
        out.mux(kept.encode(None))
    return path


def patch_all(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, f"{old!r} not found"
    return data.replace(old, new)


def mp4_with_lying_duration(source: Path, target: Path, hours: int = 100) -> Path:
    """``source`` (an mp4 written by ``write``) with the movie header's duration claiming ``hours``."""
    data = bytearray(source.read_bytes())
    at = data.index(b"mvhd")
    version = data[at + 4]
    scale_at = at + 4 + 4 + (16 if version == 1 else 8)
    scale = int.from_bytes(data[scale_at : scale_at + 4], "big")
    size = 8 if version == 1 else 4
    data[scale_at + 4 : scale_at + 4 + size] = (hours * 3600 * scale).to_bytes(size, "big")
    target.write_bytes(bytes(data))
    return target


def mkv_with_lying_size(source: Path, target: Path) -> Path:
    """``source`` (a matroska file written by ``write`` at 320×180) whose track header says 7680 wide."""
    # The PixelWidth element (id 0xB0, a 2-byte value): 320 becomes 7680, the file's layout unchanged.
    target.write_bytes(patch_all(source.read_bytes(), b"\xb0\x82\x01\x40", b"\xb0\x82\x1e\x00"))
    return target
