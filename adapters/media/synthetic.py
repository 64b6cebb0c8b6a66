"""Test and demo media with known truth: coloured scenes, moving objects, faces, loud moments, espeak speech.

Written with PyAV only (h264 + aac in mp4). Frames are built per scene once and reused; only scenes with
motion draw per frame, so a 10-minute 720p file is generated in a minute or two.
"""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import wave
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import attrs
import av
import cv2
import numpy as np

from domain.media import Span

SPEECH_RATE = 16_000
_AUDIO_FRAME = 1024  # aac frame size
_SPEECH_LEAD = 0.3  # seconds of room tone before a scene's sentence starts


@attrs.frozen
class Scene:
    """One shot: a background colour, optional moving object, face, loud audio and spoken text."""

    seconds: float
    colour: tuple[int, int, int]
    motion: float = 0.0  # 0..1: size and speed of a moving object
    loud: bool = False  # lively loud audio (noise bursts, tones) instead of quiet room tone
    speech: str | None = None
    face_x: float | None = None  # 0..1 horizontal centre of a drawn face; None = no face


@attrs.frozen
class Utterance:
    span: Span
    text: str


@attrs.frozen
class Truth:
    """What was written, so tests can compare an analysis with it."""

    duration: float
    size: tuple[int, int]
    fps: float
    scenes: tuple[Span, ...]
    cuts: tuple[float, ...]  # start time of every scene after the first (actual first-frame time)
    speech: tuple[Utterance, ...]
    loud: tuple[Span, ...]
    has_audio: bool
    vfr: bool

    @property
    def speech_spans(self) -> tuple[Span, ...]:
        return tuple(u.span for u in self.speech)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(u.text for u in self.speech)


class SpeechSynthesisUnavailable(RuntimeError):
    pass


def speak(text: str, *, voice: str = "en-us", words_per_minute: int = 150) -> np.ndarray:
    """16 kHz mono float32 speech for ``text`` from espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechSynthesisUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(
        [exe, "--stdout", "-v", voice, "-s", str(words_per_minute), text],
        check=True,
        capture_output=True,
    ).stdout
    rate, pcm = _parse_wav(wav)
    return _resample(pcm, rate, SPEECH_RATE)


def _parse_wav(data: bytes) -> tuple[int, np.ndarray]:
    # espeak-ng streams with placeholder RIFF sizes, so read the header and take every byte after "data".
    with wave.open(io.BytesIO(data[:44])) as header:
        rate = header.getframerate()
    start = data.index(b"data") + 8
    body = data[start : start + (len(data) - start) // 2 * 2]
    return rate, np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or x.size == 0:
        return x.astype(np.float32)
    n = round(x.size * dst / src)
    t = np.arange(n, dtype=np.float64) * (src / dst)
    return np.interp(t, np.arange(x.size), x).astype(np.float32)


def _voiced_extent(x: np.ndarray, rate: int) -> tuple[float, float]:
    """First and last sample louder than -40 dBFS, in seconds: espeak pads its output with silence."""
    loud = np.flatnonzero(np.abs(x) > 0.01)
    if loud.size == 0:
        return 0.0, 0.0
    return float(loud[0]) / rate, float(loud[-1] + 1) / rate


# ---------------------------------------------------------------- pictures


def _background(scene: Scene, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    # A soft vertical gradient keeps frames from being perfectly flat (flat frames are unlike real video).
    shade = np.linspace(0.85, 1.1, h, dtype=np.float32)[:, None, None]
    rgb[:] = np.clip(np.array(scene.colour, np.float32)[None, None, :] * shade, 0, 255).astype(np.uint8)
    if scene.face_x is not None:
        _draw_face(rgb, scene.face_x)
    return rgb


def _draw_face(rgb: np.ndarray, face_x: float) -> None:
    h, w = rgb.shape[:2]
    cx, cy = int(face_x * w), int(h * 0.45)
    ax, ay = max(4, h // 7), max(5, h // 5)
    cv2.ellipse(rgb, (cx, cy), (ax, ay), 0, 0, 360, (232, 190, 160), -1)
    eye_dx, eye_y, eye_r = ax // 2, cy - ay // 4, max(1, ax // 7)
    for ex in (cx - eye_dx, cx + eye_dx):
        cv2.circle(rgb, (ex, eye_y), eye_r, (40, 30, 30), -1)
    cv2.ellipse(rgb, (cx, cy + ay // 2), (ax // 2, max(1, ay // 8)), 0, 0, 180, (150, 40, 50), -1)


def _draw_object(rgb: np.ndarray, motion: float, t: float) -> np.ndarray:
    """A bright square bouncing across the frame; its size and speed grow with ``motion``."""
    h, w = rgb.shape[:2]
    side = max(4, int(h * (0.12 + 0.3 * motion)))
    speed = 0.15 + 0.6 * motion  # frame widths per second
    span_x, span_y = max(1, w - side), max(1, h - side)
    x = int(abs(((t * speed * w) % (2 * span_x)) - span_x))
    y = int(abs(((t * speed * 0.7 * h) % (2 * span_y)) - span_y))
    out = rgb.copy()
    out[y : y + side, x : x + side] = (255, 255, 255) - np.asarray(rgb[h // 2, w // 2], np.int32) // 2
    return out


def _to_frame(rgb: np.ndarray) -> av.VideoFrame:
    # The i420 conversion in cv2 is several times faster than letting the encoder's swscale do it.
    yuv: np.ndarray = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


# ---------------------------------------------------------------- sounds


def _room_tone(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(n) * 0.003).astype(np.float32)


def _lively(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) * 0.08
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2.0 * t) > 0)  # on/off twice a second, like claps or drums
    noise = rng.standard_normal(n).astype(np.float32) * 0.12 * beat
    return (chord * (0.6 + 0.4 * beat) + noise).astype(np.float32)


# ---------------------------------------------------------------- writing


@attrs.define
class _AudioWriter:
    """Feeds arbitrary-length mono blocks to an aac stream in encoder-sized stereo frames."""

    container: av.container.OutputContainer
    stream: av.AudioStream
    rate: int
    pending: np.ndarray = attrs.field(factory=lambda: np.zeros(0, np.float32))
    pts: int = 0

    def write(self, mono: np.ndarray, *, final: bool = False) -> None:
        buf = np.concatenate([self.pending, mono.astype(np.float32)])
        cut = len(buf) if final else len(buf) // _AUDIO_FRAME * _AUDIO_FRAME
        for i in range(0, cut, _AUDIO_FRAME):
            chunk = np.clip(buf[i : i + _AUDIO_FRAME], -1, 1)
            frame = av.AudioFrame.from_ndarray(np.vstack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate = self.rate
            frame.pts = self.pts
            self.pts += chunk.size
            self.container.mux(self.stream.encode(frame))
        self.pending = buf[cut:]
        if final:
            self.container.mux(self.stream.encode(None))


def _frame_times(total: float, fps: float, vfr: bool, rng: np.random.Generator) -> Iterator[float]:
    if not vfr:
        for i in range(round(total * fps)):
            yield i / fps
        return
    t = 0.0
    while t < total - 1e-9:
        yield t
        t += float(rng.uniform(0.4, 1.6)) / fps  # irregular frame durations, mean 1/fps


def write_video(
    path: Path,
    scenes: Sequence[Scene],
    *,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    audio: bool = True,
    vfr: bool = False,
    sample_rate: int = 48_000,
    gop: int | None = None,
    preset: str = "ultrafast",
    seed: int = 0,
) -> Truth:
    """Write ``scenes`` back to back to an mp4 at ``path`` and return what is in it."""
    if not scenes:
        raise ValueError("at least one scene is needed")
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0.0], np.cumsum([s.seconds for s in scenes])])
    total = float(starts[-1])
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": preset})
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = time_base
        video.time_base = time_base
        if gop is not None:
            video.codec_context.gop_size = gop
        video.thread_type = "AUTO"
        writer = None
        if audio:
            astream = container.add_stream("aac", rate=sample_rate, layout="stereo")
            writer = _AudioWriter(container, astream, sample_rate)

        scene_idx, first_frame_time = -1, [0.0] * len(scenes)
        background = None
        for t in _frame_times(total, fps, vfr, rng):
            idx = int(np.searchsorted(starts, t, side="right")) - 1
            if idx != scene_idx:
                if writer is not None and scene_idx >= 0:
                    writer.write(_scene_audio(scenes[scene_idx], sample_rate, rng))
                scene_idx, background = idx, _background(scenes[idx], size)
                first_frame_time[idx] = t
                still = _to_frame(background)
            scene = scenes[idx]
            assert background is not None
            frame = _to_frame(_draw_object(background, scene.motion, t)) if scene.motion > 0 else still
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            container.mux(video.encode(frame))
        if writer is not None:
            writer.write(_scene_audio(scenes[scene_idx], sample_rate, rng), final=True)
        container.mux(video.encode(None))

    speech, loud = [], []
    for scene, start in zip(scenes, starts[:-1], strict=True):
        if scene.loud:
            loud.append(Span(float(start), float(start) + scene.seconds))
        if scene.speech and audio:
            a, b = _voiced_extent(_speech_track(scene), SPEECH_RATE)
            speech.append(Utterance(Span(float(start) + a, float(start) + b), scene.speech))
    spans = tuple(Span(float(a), float(b)) for a, b in itertools.pairwise(starts))
    return Truth(
        duration=total,
        size=size,
        fps=float(fps),
        scenes=spans,
        cuts=tuple(first_frame_time[1:]),
        speech=tuple(speech),
        loud=tuple(loud),
        has_audio=audio,
        vfr=vfr,
    )


_speech_cache: dict[str, np.ndarray] = {}


def _speech_track(scene: Scene) -> np.ndarray:
    """The scene's sentence at 16 kHz, placed after a short lead-in and cut to the scene's length."""
    assert scene.speech is not None
    if scene.speech not in _speech_cache:
        _speech_cache[scene.speech] = speak(scene.speech)
    voice = _speech_cache[scene.speech]
    n = int(scene.seconds * SPEECH_RATE)
    lead = int(_SPEECH_LEAD * SPEECH_RATE)
    track = np.zeros(n, np.float32)
    room = max(0, n - lead - int(0.2 * SPEECH_RATE))
    track[lead : lead + min(room, voice.size)] = voice[:room]
    return track


def _scene_audio(scene: Scene, rate: int, rng: np.random.Generator) -> np.ndarray:
    n = round(scene.seconds * rate)
    mix = _lively(n, rate, rng) if scene.loud else _room_tone(n, rate, rng)
    if scene.speech:
        voice = _resample(_speech_track(scene), SPEECH_RATE, rate)[:n]
        peak = float(np.abs(voice).max()) or 1.0
        mix[: voice.size] += voice * (0.5 / peak)
    return mix


def write_audio_only(path: Path, seconds: float, *, sample_rate: int = 48_000) -> None:
    """An mp4/m4a holding only an aac stream (no video), for error handling tests."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="stereo")
        writer = _AudioWriter(container, stream, sample_rate)
        writer.write(_lively(int(seconds * sample_rate), sample_rate, rng), final=True)


def transcode(
    source: Path,
    target: Path,
    *,
    video_codec: str,
    audio_codec: str,
    container_format: str | None = None,
    layout: str = "stereo",
    sample_rate: int = 48_000,
    size: tuple[int, int] | None = None,
    max_seconds: float | None = None,
    start_offset: float = 0.0,
) -> None:
    """Re-encode a generated file into another container and codecs (webm/VP9/Opus, mkv/HEVC, 5.1, odd
    rates), so tests meet the formats real uploads come in. Frames keep their times, shifted by
    ``start_offset`` seconds (broadcast captures and MPEG-TS files rarely start at 0)."""
    options = {"output_ts_offset": f"{start_offset:g}"} if start_offset else {}
    with (
        av.open(str(source)) as src,
        av.open(str(target), "w", format=container_format, options=options) as dst,
    ):
        vin, ain = src.streams.video[0], src.streams.audio[0]
        rate = vin.average_rate or Fraction(25)
        quiet = {"x265-params": "log-level=error"} if video_codec == "libx265" else {}
        # The codec names are runtime strings, so PyAV's stubs cannot tell which stream type comes back.
        vout = cast(av.VideoStream, dst.add_stream(video_codec, rate=rate, options=quiet))
        vout.width, vout.height = size or (vin.codec_context.width, vin.codec_context.height)
        vout.pix_fmt = "yuv420p"
        aout = cast(av.AudioStream, dst.add_stream(audio_codec, rate=sample_rate, layout=layout))
        frame_size = aout.codec_context.frame_size or None
        resampler = av.AudioResampler(aout.codec_context.format, layout, sample_rate, frame_size=frame_size)
        for frame in src.decode(vin, ain):
            if isinstance(frame, av.VideoFrame):
                if max_seconds is not None and frame.time is not None and frame.time >= max_seconds:
                    continue
                out = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                out.pts, out.time_base = frame.pts, frame.time_base
                dst.mux(vout.encode(out))
            elif isinstance(frame, av.AudioFrame):
                if max_seconds is not None and frame.time is not None and frame.time >= max_seconds:
                    continue
                frame.pts = None  # the resampler restamps audio continuously
                for chunk in resampler.resample(frame):
                    dst.mux(aout.encode(chunk))
        for chunk in resampler.resample(None):
            dst.mux(aout.encode(chunk))
        dst.mux(vout.encode(None))
        dst.mux(aout.encode(None))


def damage_packets(source: Path, target: Path, every: int) -> int:
    """Overwrite the head (the NAL length and header) of every ``every``-th video packet, keyframes
    spared; returns how many. Damage inside the payload alone is concealed by the decoder."""
    data = bytearray(source.read_bytes())
    damaged = 0
    with av.open(str(source)) as container:
        for i, packet in enumerate(container.demux(video=0)):
            if packet.pos is None or packet.size < 64 or packet.is_keyframe or i % every:
                continue
            data[packet.pos : packet.pos + 24] = b"\xff" * 24
            damaged += 1
    target.write_bytes(bytes(data))
    return damaged


_SENTENCES = (
    "Welcome back to the show. Today we talk about how small habits change everything.",
    "The first thing I learned is that nobody reads the manual until something breaks.",
    "And then the whole crowd started cheering, it was absolutely unbelievable!",
    "Here is the secret. Start before you feel ready, and keep going every single day.",
    "We measured it twice, and the numbers did not lie. It was three times faster.",
    "So what would you do differently? Tell me in the comments below.",
)
_PALETTE = (
    (40, 60, 120),
    (200, 80, 40),
    (30, 140, 70),
    (150, 40, 150),
    (220, 200, 60),
    (20, 20, 30),
    (90, 170, 200),
)


def demo_scenes(seconds: float = 120) -> list[Scene]:
    """A talk-show-like plan: spoken scenes of 6–14 s, with a loud, lively moment every few scenes."""
    scenes: list[Scene] = []
    rng = np.random.default_rng(7)
    t, i = 0.0, 0
    while t < seconds - 1e-6:
        length = min(float(rng.choice([6.0, 8.0, 10.0, 12.0, 14.0])), seconds - t)
        loud = i % 4 == 3
        scenes.append(
            Scene(
                seconds=length,
                colour=_PALETTE[i % len(_PALETTE)],
                motion=0.8 if loud else (0.2 if i % 3 == 1 else 0.0),
                loud=loud,
                speech=None if loud or length < 4 else _SENTENCES[i % len(_SENTENCES)],
                face_x=None if loud else (0.3 if i % 2 else 0.65),
            )
        )
        t, i = t + length, i + 1
    return scenes


def make_sample(path: Path, seconds: float = 120, *, size: tuple[int, int] = (640, 360)) -> Truth:
    """The demo video: about two minutes of spoken scenes with cuts and a few loud, lively moments."""
    return write_video(path, demo_scenes(seconds), size=size)
