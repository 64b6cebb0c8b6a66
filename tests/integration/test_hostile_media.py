"""Hostile media through probe, analysis and rendering: any channel layout, MPEG-TS whose clock jumps, files
with several video and audio streams, pictures that are no video, and frames at the edges of a span.

Inputs are built with PyAV: numbered frames (9 black/white blocks) tell which source frame a clip shows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.probe import MediaLimits, probe
from adapters.media.renderer import PyAVClipRenderer
from adapters.speech.audio import decode_audio
from domain.errors import UnsupportedMedia
from domain.media import MEDIA_FEATURES, Clip, ClipOptions, MediaInfo, Span
from tests.numbered_frames import frame_number, numbered_frame

SIZE = (320, 180)
BITS = 9
RATE = 48_000
OPTIONS = ClipOptions(min_seconds=1, caption_formats=frozenset())


def _numbered(index: int, size: tuple[int, int] = SIZE, background: int = 128) -> av.VideoFrame:
    return numbered_frame(index, size, bits=BITS, bar_rows=size[1] // 4, background=background)


def _number(frame: av.VideoFrame) -> int:
    return frame_number(frame, bits=BITS, bar_rows=frame.height // 4, margin=6)


def _tone(seconds: float, hz: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _mux_audio(
    out: av.container.OutputContainer, stream: av.AudioStream, wave: np.ndarray, offset: int = 0
) -> None:
    """Mono ``wave`` into ``stream``, spread by FFmpeg's resampler over whatever layout it has."""
    resampler = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=RATE)
    for start in range(0, wave.size, 1024):
        block = np.ascontiguousarray(wave[None, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, offset + start, Fraction(1, RATE)
        for resampled in resampler.resample(frame):
            out.mux(stream.encode(resampled))
    for resampled in resampler.resample(None):
        out.mux(stream.encode(resampled))
    out.mux(stream.encode(None))


def _write(
    path: Path,
    times: Sequence[float],
    *,
    first: int = 0,
    background: int = 128,
    audio: np.ndarray | None = None,
    layout: str = "stereo",
    audio_codec: str = "aac",
    offset: float = 0.0,
    fmt: str | None = None,
) -> Path:
    """Numbered frames ``first``, ``first + 1``, ... shown at ``times`` (+ ``offset``) seconds; then sound."""
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream(audio_codec, rate=RATE, layout=layout) if audio is not None else None
        for i, t in enumerate(times):
            frame = _numbered(first + i, background=background)
            frame.pts, frame.time_base = round((t + offset) * 1000), Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None and audio is not None:
            _mux_audio(out, sound, audio, round(offset * RATE))
    return path


def _grid(seconds: float, fps: float) -> list[float]:
    return [i / fps for i in range(round(seconds * fps))]


def _render(path: Path, info: MediaInfo, span: Span, out: Path) -> Path:
    rendered = PyAVClipRenderer().render(path, info, Clip(span, 1.0, 1), OPTIONS, out)
    return Path(rendered.media_path)


def _clip_facts(path: Path) -> tuple[list[int], float, np.ndarray | None, int]:
    """Frame numbers, the picture's duration, the sound (mono) and its channel count."""
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        numbers = [_number(f) for f in c.decode(video)]
        picture = float(video.duration * video.time_base)
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return numbers, picture, None, 0
        channels = c.streams.audio[0].channels
        sound = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    return numbers, picture, sound, channels


def _rms_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(max(float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))), 1e-9)))


def _frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * RATE / samples.size)


# --- any channel layout renders, downmixed to stereo ---------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "codec", "fmt"),
    [("7.1", "aac", "mp4"), ("5.1(side)", "aac", "mp4"), ("hexadecagonal", "pcm_s16le", "matroska")],
)
def test_any_channel_layout_renders_as_stereo(tmp_path: Path, layout: str, codec: str, fmt: str) -> None:
    path = _write(
        tmp_path / f"many.{'mp4' if fmt == 'mp4' else 'mkv'}",
        _grid(6.0, 25),
        audio=_tone(6.0, 300.0),
        layout=layout,
        audio_codec=codec,
        fmt=fmt,
    )
    info = probe(path, MediaLimits())
    numbers, picture, sound, out_channels = _clip_facts(_render(path, info, Span(1.3, 4.3), tmp_path))

    assert out_channels == 2
    assert sound is not None and abs(sound.size / RATE - 3.0) <= 0.05 and _rms_db(sound) > -30
    assert abs(picture - 3.0) <= 0.02 and numbers[0] == 32


# --- MPEG-TS whose clock jumps ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["forward", "backward", "restart"])
def joined_ts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s with its clock at 100 s (bright, 300 Hz), then 10 s more whose clock jumps ahead to 5000 s,
    back to 0 s, or restarts at 100 s (dark, 600 Hz), joined byte for byte as ``cat`` does."""
    folder = tmp_path_factory.mktemp("ts")
    second = {"forward": 5000.0, "backward": 0.0, "restart": 100.0}[request.param]
    a = _write(
        folder / "a.ts", _grid(10, 25), background=220, audio=_tone(10, 300), offset=100.0, fmt="mpegts"
    )
    b = _write(
        folder / "b.ts",
        _grid(10, 25),
        first=250,
        background=30,
        audio=_tone(10, 600),
        offset=second,
        fmt="mpegts",
    )
    joined = folder / f"{request.param}.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    return joined


def test_a_jumping_clock_is_read_as_one_continuous_clock(joined_ts: Path) -> None:
    analyzer = PyAVMediaAnalyzer(MediaLimits(), decoders=2, min_part_seconds=5.0)  # the second part seeks
    info = analyzer.probe(joined_ts)
    assert info.duration == pytest.approx(20.0, abs=0.1)

    analysis = analyzer.analyze(joined_ts, info)
    brightness = analysis.features[:, MEDIA_FEATURES.index("brightness")]
    loudness = analysis.features[:, MEDIA_FEATURES.index("loudness")]
    assert analysis.seconds == 20
    assert (brightness[:10] > 0.5).all() and (brightness[10:] < 0.4).all(), brightness
    assert (loudness > -30).all(), loudness


def test_a_clip_across_the_jump_is_as_long_as_listed_and_shows_that_time(
    joined_ts: Path, tmp_path: Path
) -> None:
    info = probe(joined_ts, MediaLimits())
    numbers, picture, sound, _ = _clip_facts(_render(joined_ts, info, Span(9.73, 16.0), tmp_path))

    # Before the jump frame k is shown from file time 100 + k/25; media time 0 is the file's start.
    on_screen = int((9.73 + info.start_time - 100.0) * 25 + 1e-6)
    assert numbers[0] == on_screen
    assert numbers == list(range(on_screen, on_screen + len(numbers)))  # no frame skipped or repeated
    assert abs(len(numbers) - 6.27 * 25) <= 2
    assert abs(picture - 6.27) <= 0.02
    assert sound is not None and abs(sound.size / RATE - 6.27) <= 0.05
    # The sound changes with the picture: the first piece's tone, then the second's.
    switch = numbers.index(250) / 25
    assert _frequency(sound[: round((switch - 0.05) * RATE)]) == pytest.approx(300, abs=15)
    assert _frequency(sound[round((switch + 0.1) * RATE) :]) == pytest.approx(600, abs=15)


# --- several video and audio streams ----------------------------------------------------------------------


def _write_many_streams(path: Path, main_first: bool) -> Path:
    """A 64×36 thumbnail stream and a silent track beside the real picture and a track with sound; the
    first stream of each kind is marked the default one, as ffmpeg's muxing does."""
    seconds = 4.0
    with av.open(str(path), "w") as out:
        streams = []
        for size in [SIZE, (64, 36)] if main_first else [(64, 36), SIZE]:
            stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
            streams.append(stream)
        tracks = [out.add_stream("aac", rate=RATE, layout="stereo") for _ in range(2)]
        streams[0].disposition = tracks[0].disposition = av.stream.Disposition.default
        for i in range(round(seconds * 25)):
            for stream in streams:
                frame = _numbered(i, (stream.width, stream.height))
                frame.pts, frame.time_base = i, Fraction(1, 25)
                out.mux(stream.encode(frame))
        for stream in streams:
            out.mux(stream.encode(None))
        loud, silent = _tone(seconds, 440.0), np.zeros(round(seconds * RATE), np.float32)
        for track, wave in zip(tracks, [loud, silent] if main_first else [silent, loud], strict=True):
            _mux_audio(out, track, wave)
    return path


@pytest.mark.parametrize("main_first", [False, True])
@pytest.mark.parametrize("name", ["many.mkv", "many.mp4"])
def test_the_real_picture_and_the_track_with_sound_are_chosen(
    tmp_path: Path, name: str, main_first: bool
) -> None:
    path = _write_many_streams(tmp_path / name, main_first)
    analyzer = PyAVMediaAnalyzer(MediaLimits())
    info = analyzer.probe(path)
    assert (info.width, info.height) == SIZE and info.has_audio

    analysis = analyzer.analyze(path, info)
    assert (analysis.features[:, MEDIA_FEATURES.index("loudness")] > -30).all()
    heard = decode_audio(path)
    assert heard is not None and _rms_db(heard / 32768) > -30  # what the transcriber hears

    clip = _render(path, info, Span(1.0, 3.0), tmp_path)
    with av.open(str(clip)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == SIZE
    numbers, _, sound, _ = _clip_facts(clip)
    assert numbers[0] == 25 and sound is not None and _rms_db(sound) > -30


# --- pictures that are no video ---------------------------------------------------------------------------


def _write_pictures(
    path: Path, fmt: str, codec: str, frames: int, pix_fmt: str, size: tuple[int, int]
) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        for i in range(frames):
            rgb = np.full((size[1], size[0], 3), i * 50 % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "frames", "pix_fmt", "size", "message"),
    [
        ("photo.png", "image2", "png", 1, "rgb24", (64, 48), "a still image (PNG), not a video"),
        ("photo.jpg", "image2", "mjpeg", 1, "yuvj420p", (64, 48), "a still image (JPEG), not a video"),
        ("logo.gif", "gif", "gif", 1, "rgb8", (64, 48), "a still image (GIF), not a video"),
        ("loop.gif", "gif", "gif", 5, "rgb8", (64, 48), "an animation (GIF), not a video"),
        ("loop.webp", "webp", "libwebp_anim", 5, "yuv420p", (64, 48), "an animation (WEBP), not a video"),
        ("loop.png", "apng", "apng", 5, "rgb24", (64, 48), "an animation (PNG), not a video"),
        ("photo.avif", "avif", "libsvtav1", 1, "yuv420p", (64, 48), "a still image (AVIF), not a video"),
        ("loop.avif", "avif", "libsvtav1", 5, "yuv420p", (64, 48), "an animation (AVIF), not a video"),
        ("dot.mkv", "matroska", "ffv1", 30, "yuv420p", (1, 1), "the picture is 1x1, too small to clip"),
        ("tiny.mp4", "mp4", "libx264", 30, "yuv420p", (16, 16), "the picture is 16x16, too small to clip"),
    ],
)
def test_pictures_that_are_no_video_are_refused_up_front_with_what_they_are(
    tmp_path: Path,
    name: str,
    fmt: str,
    codec: str,
    frames: int,
    pix_fmt: str,
    size: tuple[int, int],
    message: str,
) -> None:
    path = _write_pictures(tmp_path / name, fmt, codec, frames, pix_fmt, size)
    with pytest.raises(UnsupportedMedia, match=f"^{re.escape(f'{name}: {message}')}"):
        probe(path, MediaLimits())


# --- frames at the edges of a span ------------------------------------------------------------------------


def _irregular_times() -> list[float]:
    """Frames at irregular intervals (a screen capture's, a phone's), two of them just before 12.0 s."""
    gaps = np.random.default_rng(0).choice([0.033, 0.04, 0.1, 0.3, 0.7], 400)
    times = [round(float(t), 3) for t in np.cumsum(gaps) if t < 20 and not 11.9 < t < 12.1]
    return sorted([*times, 11.956, 11.99])


@pytest.mark.parametrize("span", [Span(12.0, 15.0), Span(3.0, 6.0)])
def test_a_variable_rate_clip_shows_what_is_on_screen_over_its_span(tmp_path: Path, span: Span) -> None:
    times = _irregular_times()
    path = _write(tmp_path / "vfr.mp4", times, audio=_tone(20, 300))
    info = probe(path, MediaLimits())
    assert info.start_time == 0.0

    numbers, picture, sound, _ = _clip_facts(_render(path, info, span, tmp_path))
    on_screen = max(i for i, t in enumerate(times) if t <= span.start)  # 11.99 for the span at 12 s
    assert numbers == list(range(on_screen, on_screen + len(numbers)))
    assert times[numbers[-1]] < span.end <= times[numbers[-1] + 1]
    assert abs(picture - span.duration) <= 0.01  # the last frame is held to the span's end
    assert sound is not None and abs(sound.size / RATE - span.duration) <= 0.05


def test_a_slow_picture_is_held_as_long_as_the_sound(tmp_path: Path) -> None:
    path = _write(tmp_path / "slides.mp4", _grid(20, 0.5), audio=_tone(20, 300))  # a frame every 2 s
    info = probe(path, MediaLimits())

    numbers, picture, sound, _ = _clip_facts(_render(path, info, Span(11.0, 14.0), tmp_path))
    assert numbers == [5, 6]  # shown from 10 s (on screen at 11 s) and from 12 s
    assert sound is not None and abs(sound.size / RATE - 3.0) <= 0.05
    assert abs(picture - 3.0) <= 0.02
