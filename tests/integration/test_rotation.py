"""Phone videos store landscape frames with a display rotation: clips must come out upright."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from adapters.media.probe import MediaLimits, probe
from adapters.media.renderer import PyAVClipRenderer
from domain.media import Aspect, Clip, ClipOptions, Span

DISPLAY_W, DISPLAY_H = 180, 320  # portrait, as the viewer sees it


def _portrait_picture() -> np.ndarray:
    """Display-oriented RGB: a white band across the top and a grey one across the middle, dark elsewhere."""
    picture = np.full((DISPLAY_H, DISPLAY_W, 3), 30, np.uint8)
    picture[:40] = 255
    picture[150:170] = 150
    return picture


@pytest.fixture(scope="module")
def phone_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rotation") / "phone.mp4"
    # Stored sideways (landscape), displayed after turning 90 degrees clockwise, as phones record.
    stored = np.ascontiguousarray(np.rot90(_portrait_picture(), 1))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(-90)  # counter-clockwise degrees, as FFmpeg's display matrix says
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_probe_reports_the_displayed_size_and_rotation(phone_video: Path) -> None:
    info = probe(phone_video, MediaLimits())
    assert (info.width, info.height, info.rotation) == (DISPLAY_W, DISPLAY_H, 90)


@pytest.mark.parametrize("aspect", [Aspect.SOURCE, Aspect.SQUARE])
def test_clips_of_a_rotated_video_are_upright(phone_video: Path, tmp_path: Path, aspect: Aspect) -> None:
    info = probe(phone_video, MediaLimits())
    clip = Clip(span=Span(0.5, 2.5), score=1.0, rank=1)
    options = ClipOptions(min_seconds=1, max_seconds=5, aspect=aspect, caption_formats=())
    rendered = PyAVClipRenderer().render(phone_video, info, clip, options, tmp_path)
    with av.open(rendered.media_path) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        assert frame.rotation == 0
        luma = frame.to_ndarray(format="gray")
    if aspect is Aspect.SOURCE:
        assert (stream.width, stream.height) == (DISPLAY_W, DISPLAY_H)
    else:
        assert stream.width == stream.height == DISPLAY_W
    # Upright, the bands run across the picture: rows differ from each other, columns do not.
    assert luma.mean(axis=1).std() > 5 * luma.mean(axis=0).std()
    if aspect is Aspect.SOURCE:
        assert luma[:20].mean() > 200 > 60 > luma[-20:].mean(), "the white band must be at the top"
