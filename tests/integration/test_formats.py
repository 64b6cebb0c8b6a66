"""Uploads come as webm (VP9/Opus), mkv (HEVC, 5.1 at 44.1 kHz) and more: the engine reads them all.

Each variant goes through probe, analysis and rendering of one vertical clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.probe import MediaLimits
from adapters.media.renderer import PyAVClipRenderer
from adapters.media.synthetic import Truth, transcode
from adapters.speech.vad import SileroVad
from adapters.speech.whisper import WhisperTranscriber
from domain.errors import MediaError
from domain.media import Aspect, Clip, ClipOptions, Span

VARIANTS: dict[str, dict[str, Any]] = {
    "webm-vp9-opus": {"video_codec": "libvpx-vp9", "audio_codec": "libopus", "container_format": "webm"},
    "mkv-hevc-5.1-44k": {
        "video_codec": "libx265",
        "audio_codec": "aac",
        "container_format": "matroska",
        "layout": "5.1",
        "sample_rate": 44_100,
    },
    "mov-h264-mono-22k": {
        "video_codec": "libx264",
        "audio_codec": "aac",
        "container_format": "mov",
        "layout": "mono",
        "sample_rate": 22_050,
    },
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, sample_video: tuple[Path, Truth], tmp_path_factory) -> Path:
    source, _ = sample_video
    target = (
        tmp_path_factory.mktemp("formats") / f"{request.param}.{VARIANTS[request.param]['container_format']}"
    )
    transcode(source, target, size=(320, 180), max_seconds=22.0, **VARIANTS[request.param])
    return target


def test_every_format_is_analysed_and_clipped(variant: Path, sample_video, tmp_path: Path) -> None:
    _, truth = sample_video
    analyzer = PyAVMediaAnalyzer(MediaLimits())
    info = analyzer.probe(variant)
    assert 21.0 <= info.duration <= 23.0 and info.has_audio
    analysis = analyzer.analyze(variant, info)
    assert abs(analysis.seconds - info.duration) <= 1  # one row per (started) second
    found = [c for c in analysis.shot_cuts if any(abs(c - t) <= 0.5 for t in truth.cuts)]
    assert len(found) == 2, (analysis.shot_cuts, truth.cuts)  # the cuts at 10 s and 20 s

    clip = Clip(span=Span(8.0, 14.0), score=1.0, rank=1)
    options = ClipOptions(min_seconds=2, max_seconds=10, aspect=Aspect.VERTICAL, caption_formats=())
    rendered = PyAVClipRenderer().render(variant, info, clip, options, tmp_path)
    with av.open(rendered.media_path) as container:
        assert container.streams.video[0].height > container.streams.video[0].width
        assert container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 6.0) < 0.1
    assert frames > 0


def test_a_picture_that_stops_before_the_sound_sets_the_duration(tmp_path: Path) -> None:
    path = tmp_path / "short-picture.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 90, "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        grey = np.full((90, 160, 3), 90, np.uint8)
        for i in range(75):  # 3 s of picture
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for i in range(6 * 48_000 // 1024):  # 6 s of sound
            samples = np.zeros((1, 1024), np.float32)
            chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48_000, i * 1024
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    info = PyAVMediaAnalyzer(MediaLimits()).probe(path)
    assert 2.9 <= info.duration <= 3.1


def _with_cover_art(path: Path, *, video_seconds: float) -> None:
    """An mp4 with cover art (as podcasts and music files carry), a real picture when ``video_seconds``
    > 0, and sound. (The mp4 muxer stores the artwork as the last stream.)"""
    with av.open(str(path), "w", format="mp4") as container:
        cover = container.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        video = None
        if video_seconds:
            video = container.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = 160, 90, "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        art = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, np.uint8), format="rgb24")
        art = art.reformat(format="yuvj420p")
        art.pts = 0
        container.mux(cover.encode(art))
        container.mux(cover.encode(None))
        for i in range(int(video_seconds * 25)):
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), i % 255, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))  # type: ignore[union-attr]  # video_seconds > 0
        if video is not None:
            container.mux(video.encode(None))
        for i in range(3 * 48_000 // 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48_000, i * 1024
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def test_audio_with_cover_art_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "podcast.m4a"
    _with_cover_art(path, video_seconds=0)
    with pytest.raises(MediaError, match="no video stream"):
        PyAVMediaAnalyzer(MediaLimits()).probe(path)


def test_a_video_with_cover_art_is_clipped_from_its_picture(tmp_path: Path) -> None:
    path = tmp_path / "with-art.mp4"
    _with_cover_art(path, video_seconds=3.0)
    analyzer = PyAVMediaAnalyzer(MediaLimits())
    info = analyzer.probe(path)
    assert (info.width, info.height) == (160, 90)
    assert analyzer.analyze(path, info).seconds == 3


def test_a_file_that_starts_late_keeps_media_time(sample_video, tmp_path: Path) -> None:
    """An MPEG-TS capture whose first timestamp is 1000 s: cuts, words and clips count from its start."""
    source, truth = sample_video
    late = tmp_path / "capture.ts"
    transcode(source, late, video_codec="libx264", audio_codec="aac", container_format="mpegts",
              size=(320, 180), max_seconds=22.0, start_offset=1000.0)  # fmt: skip
    analyzer = PyAVMediaAnalyzer(MediaLimits(), vad=SileroVad())
    info = analyzer.probe(late)
    assert 999.0 <= info.start_time <= 1001.0 and 21.0 <= info.duration <= 23.0
    analysis = analyzer.analyze(late, info)
    assert [round(c) for c in analysis.shot_cuts] == [10, 20]
    with WhisperTranscriber.open("tiny.en") as transcriber:
        words = transcriber.transcribe(late, analysis).words
    assert words, "the first scene is spoken"
    spoken = [u.span for u in truth.speech]
    assert all(any(s.start - 0.5 <= w.start and w.end <= s.end + 0.5 for s in spoken) for w in words)

    def first_frame_colour(path: Path, media_info) -> np.ndarray:
        clip = Clip(span=Span(10.5, 12.5), score=1.0, rank=1)
        options = ClipOptions(min_seconds=1, max_seconds=5, caption_formats=())
        out = tmp_path / path.stem
        rendered = PyAVClipRenderer().render(path, media_info, clip, options, out)
        with av.open(rendered.media_path) as container:
            frame = next(container.decode(video=0))
            assert container.duration is not None
            assert abs(container.duration / av.time_base - 2.0) < 0.1
            return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)

    original = PyAVMediaAnalyzer(MediaLimits()).probe(source)
    assert np.abs(first_frame_colour(late, info) - first_frame_colour(source, original)).max() < 12
