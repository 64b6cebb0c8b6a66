"""PyAVClipRenderer on generated media: frame-exact starts, A/V sync, reframing that follows the face."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from adapters.media.faces import HaarFaceTracker, frontal_face_cascade
from adapters.media.filesystem_store import FilesystemMediaStore
from adapters.media.renderer import PyAVClipRenderer
from adapters.media.synthetic import Scene, Truth, write_video
from domain.errors import InvalidInput, MediaError
from domain.media import Clip, ClipOptions, MediaInfo, RenderedClip, Span, Word
from tests.numbered_frames import frame_number, numbered_frame

FPS = 25
GOP = 50
SIZE = (320, 180)
BITS = 8
BEEP_FRAME = 90  # the beep starts exactly when this frame is shown
RATE = 48_000


def _numbered_frame(index: int) -> av.VideoFrame:
    """Grey frame whose top half shows ``index`` as 8 black/white blocks (big enough to survive h264)."""
    return numbered_frame(index, SIZE, bits=BITS, bar_rows=SIZE[1] // 2)


def _read_number(frame: av.VideoFrame) -> int:
    return frame_number(frame, bits=BITS, bar_rows=frame.height // 2, margin=8)


def _write_numbered(path: Path, seconds: float) -> None:
    """Numbered frames with a fixed GOP and B-frames, silent audio with a beep at BEEP_FRAME's time."""
    frames = round(seconds * FPS)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream(
            "libx264",
            rate=FPS,
            options={"preset": "veryfast", "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"},
        )
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        for i in range(frames):
            frame = _numbered_frame(i)
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(round(seconds * RATE)) / RATE
        beep_at = BEEP_FRAME / FPS
        wave = np.where((t >= beep_at) & (t < beep_at + 0.2), 0.8 * np.sin(2 * np.pi * 1000 * t), 0.0)
        for start in range(0, wave.size, 1024):
            chunk = wave[start : start + 1024].astype(np.float32)
            aframe = av.AudioFrame.from_ndarray(np.vstack([chunk, chunk]), format="fltp", layout="stereo")
            aframe.sample_rate, aframe.pts = RATE, start
            out.mux(audio.encode(aframe))
        out.mux(audio.encode(None))


def _info(path: Path, has_audio: bool = True) -> MediaInfo:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        duration = float(c.duration or 0) / 1e6
        return MediaInfo(duration, v.width, v.height, float(v.average_rate or FPS), "h264", "aac", has_audio)


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("numbered") / "numbered.mp4"
    _write_numbered(path, 6.0)
    return path


@pytest.fixture(scope="module")
def silent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("silent") / "silent.mp4"
    return path, write_video(path, [Scene(3.0, (40, 60, 120), motion=0.3)], size=SIZE, audio=False)


@pytest.fixture(scope="module")
def tracker() -> HaarFaceTracker:
    return HaarFaceTracker()


def _clip(start: float, end: float, words: tuple[Word, ...] = ()) -> Clip:
    return Clip(Span(start, end), score=1.0, rank=3, words=words)


def _options(aspect: str = "source", captions: tuple[str, ...] = ()) -> ClipOptions:
    return ClipOptions(min_seconds=1, aspect=aspect, caption_formats=frozenset(captions))


def _decode_all(path: str) -> tuple[list[av.VideoFrame], np.ndarray | None, float]:
    """Every video frame, the mono audio (None without an audio stream) and the container duration."""
    frames: list[av.VideoFrame] = []
    audio: list[np.ndarray] = []
    with av.open(path) as c:
        has_audio = bool(c.streams.audio)
        for frame in c.decode(*c.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame)
            elif isinstance(frame, av.AudioFrame):
                audio.append(frame.to_ndarray().mean(axis=0))
        duration = float(c.duration or 0) / 1e6
    return frames, (np.concatenate(audio) if has_audio else None), duration


def test_clip_starts_on_the_span_first_frame_between_keyframes(numbered: Path, tmp_path: Path) -> None:
    start, end = 63 / FPS, 5.0  # frame 63: 13 frames past the keyframe at 50
    rendered = PyAVClipRenderer(preset="ultrafast").render(
        numbered, _info(numbered), _clip(start, end), _options(), tmp_path
    )

    frames, audio, duration = _decode_all(rendered.media_path)
    numbers = [_read_number(f) for f in frames]
    assert numbers == list(range(63, 125))
    assert frames[0].time == 0.0
    assert abs(duration - (end - start)) <= 0.1
    assert audio is not None and abs(audio.size / RATE - (end - start)) <= 0.1
    assert Path(rendered.media_path).name == "clip_03.mp4"


def test_audio_stays_in_sync_with_the_picture(numbered: Path, tmp_path: Path) -> None:
    rendered = PyAVClipRenderer(preset="ultrafast").render(
        numbered, _info(numbered), _clip(1.3, 5.3), _options(), tmp_path
    )

    with av.open(rendered.media_path) as c:
        flash = next(f.time for f in c.decode(video=0) if _read_number(f) == BEEP_FRAME)
    with av.open(rendered.media_path) as c:
        first = None
        for frame in c.decode(audio=0):
            first = frame.time if first is None else first
            loud = np.flatnonzero(np.abs(frame.to_ndarray()[0]) > 0.3)
            if loud.size:
                beep = frame.time + loud[0] / frame.sample_rate
                break
    assert first is not None and flash is not None
    assert abs(first) < 1 / FPS
    assert abs(beep - flash) < 1 / FPS


@pytest.mark.parametrize(("aspect", "ratio"), [("9:16", 9 / 16), ("1:1", 1.0)])
def test_reframed_clips_have_the_aspect_and_even_sides(
    sample_video: tuple[Path, Truth], tmp_path: Path, aspect: str, ratio: float
) -> None:
    path, truth = sample_video
    rendered = PyAVClipRenderer(preset="ultrafast").render(
        path, _info(path), _clip(12.0, 15.0), _options(aspect), tmp_path
    )

    frames, audio, duration = _decode_all(rendered.media_path)
    w, h = frames[0].width, frames[0].height
    assert w % 2 == 0 and h % 2 == 0
    assert h == truth.size[1]
    assert abs(w / h - ratio) < 2 / h
    assert audio is not None and abs(duration - 3.0) <= 0.1


def _face_offset(frame: av.VideoFrame) -> float | None:
    """Horizontal distance of the detected face from the frame's centre, as a fraction of its width."""
    gray = cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY)
    found = frontal_face_cascade().detectMultiScale(gray, 1.1, 4, minSize=(24, 24))
    if len(found) == 0:
        return None
    x, _, fw, _ = max(found, key=lambda b: b[2] * b[3])
    return float((x + fw / 2) / frame.width - 0.5)


@pytest.mark.parametrize(("start", "aspect"), [(21.0, "9:16"), (2.0, "1:1")])
def test_reframing_follows_the_face(
    sample_video: tuple[Path, Truth], tracker: HaarFaceTracker, tmp_path: Path, start: float, aspect: str
) -> None:
    # The sample shows a face at 30 % of the width at 20-30 s and at 60 % at 0-10 s: a centred 9:16
    # window would not contain the first one at all.
    path, _ = sample_video
    rendered = PyAVClipRenderer(faces=tracker, preset="ultrafast").render(
        path, _info(path), _clip(start, start + 3.0), _options(aspect), tmp_path
    )

    frames, _, _ = _decode_all(rendered.media_path)
    offsets = [_face_offset(f) for f in frames[::15]]
    assert all(o is not None and abs(o) < 0.1 for o in offsets), offsets


def test_source_without_audio_renders_without_an_audio_stream(
    silent: tuple[Path, Truth], tmp_path: Path
) -> None:
    path, _ = silent
    rendered = PyAVClipRenderer(preset="ultrafast").render(
        path, _info(path, has_audio=False), _clip(0.5, 2.5), _options("1:1"), tmp_path
    )

    frames, audio, duration = _decode_all(rendered.media_path)
    assert audio is None
    assert len(frames) == 2 * FPS + 1  # 0.5 s is between frames: the one at 0.48 is on screen first
    assert abs(duration - 2.0) <= 0.1


def test_captions_are_written_with_times_relative_to_the_clip(numbered: Path, tmp_path: Path) -> None:
    words = (Word("hello", 2.0, 2.4), Word("world", 2.5, 3.1))
    rendered: RenderedClip = PyAVClipRenderer(preset="ultrafast").render(
        numbered, _info(numbered), _clip(1.0, 4.0, words), _options(captions=("srt", "vtt")), tmp_path
    )

    srt = Path(rendered.captions["srt"]).read_text(encoding="utf-8")
    vtt = Path(rendered.captions["vtt"]).read_text(encoding="utf-8")
    assert Path(rendered.captions["srt"]).name == "clip_03.srt"
    assert "00:00:01,000" in srt and "00:00:02,100" in srt and "hello" in srt
    assert vtt.startswith("WEBVTT") and "00:00:01.000" in vtt


def test_media_store_gives_a_folder_per_job(tmp_path: Path) -> None:
    store = FilesystemMediaStore(tmp_path)
    folder = store.clip_dir("3f1c2e9a-0b7d-4c1e-9f7a-1d2e3f4a5b6c")
    assert folder.is_dir() and folder.is_relative_to(tmp_path)


@pytest.mark.parametrize("job_id", ["../escape", "a/b", "..", ".", "", "/etc", "x\x00y", "a\\b"])
def test_media_store_refuses_ids_that_could_leave_its_root(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(InvalidInput):
        FilesystemMediaStore(tmp_path / "root").clip_dir(job_id)
    assert not (tmp_path / "escape").exists()


def test_a_span_past_the_end_is_a_media_error_and_leaves_no_file(numbered: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        PyAVClipRenderer(preset="ultrafast").render(
            numbered, _info(numbered), _clip(10.0, 12.0), _options(), tmp_path
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("aspect", "size"), [("source", (320, 180)), ("9:16", (178, 320))])
def test_large_sources_are_scaled_down_to_the_longest_side(
    sample_video: tuple[Path, Truth], tmp_path: Path, aspect: str, size: tuple[int, int]
) -> None:
    path, _ = sample_video  # 640×360; a 320 px cap stands in for 4K against 1920
    rendered = PyAVClipRenderer(preset="ultrafast", max_side=320).render(
        path, _info(path), _clip(12.0, 14.0), _options(aspect), tmp_path
    )
    frames, audio, duration = _decode_all(rendered.media_path)
    assert (frames[0].width, frames[0].height) == size
    assert audio is not None and abs(duration - 2.0) <= 0.1
