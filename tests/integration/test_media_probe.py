"""probe() on generated media: the facts of good files, and one clear error for each kind of bad file."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from adapters.media.probe import MediaLimits, probe
from adapters.media.synthetic import Scene, Truth, write_audio_only, write_video
from domain.errors import MediaError, MediaLimitExceeded

LIMITS = MediaLimits()


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory, sample_video: tuple[Path, Truth]) -> Path:
    d = tmp_path_factory.mktemp("bad")
    good = sample_video[0].read_bytes()
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("these are meeting notes, not a video\n" * 20)
    (d / "half.mp4").write_bytes(good[: len(good) // 2])
    write_audio_only(d / "song.m4a", 2.0)
    faststart = d / "faststart.mp4"
    _remux_faststart(sample_video[0], faststart)
    data = faststart.read_bytes()
    (d / "faststart-half.mp4").write_bytes(data[: len(data) // 2])
    return d


def _remux_faststart(src: Path, dst: Path) -> None:
    """Index first (as web uploads usually are), so a cut-off copy still opens and claims its duration."""
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def test_probe_reports_the_facts_of_a_good_file(sample_video: tuple[Path, Truth]) -> None:
    path, truth = sample_video
    info = probe(path, LIMITS)
    assert info.duration == pytest.approx(truth.duration, abs=0.1)
    assert (info.width, info.height) == truth.size
    assert info.fps == pytest.approx(truth.fps)
    assert info.video_codec == "h264"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.size_bytes == path.stat().st_size
    assert "mp4" in info.format_name


def test_probe_of_a_video_only_variable_rate_file(media_dir: Path) -> None:
    path = media_dir / "vfr-silent.mp4"
    truth = write_video(path, [Scene(2.0, (10, 20, 30)), Scene(2.0, (200, 10, 10))], audio=False, vfr=True)
    info = probe(path, LIMITS)
    assert not info.has_audio and info.audio_codec is None
    assert info.duration == pytest.approx(truth.duration, abs=0.1)
    assert 10 < info.fps < 40


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing.mp4", "file not found"),
        ("empty.mp4", "file is empty"),
        ("notes.mp4", "not a media file"),
        ("half.mp4", "truncated or corrupt"),
        ("faststart-half.mp4", "truncated or corrupt"),
        ("song.m4a", "no video stream"),
    ],
)
def test_bad_files_raise_a_one_line_media_error(bad_dir: Path, name: str, expected: str) -> None:
    with pytest.raises(MediaError) as caught:
        probe(bad_dir / name, LIMITS)
    assert type(caught.value) is MediaError
    assert expected in caught.value.message
    assert caught.value.message.startswith(name)
    assert "\n" not in caught.value.message and "Traceback" not in caught.value.message


def test_a_complete_faststart_copy_is_fine(bad_dir: Path) -> None:
    assert probe(bad_dir / "faststart.mp4", LIMITS).duration > 30


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (MediaLimits(max_seconds=30), "40 s is over the limit of 30 s"),
        (MediaLimits(max_pixels=320 * 240), "640x360 is over the limit"),
        (MediaLimits(max_bytes=1000), "bytes is over the limit of 1000 bytes"),
    ],
)
def test_files_over_the_limits_are_refused(
    sample_video: tuple[Path, Truth], limits: MediaLimits, expected: str
) -> None:
    with pytest.raises(MediaLimitExceeded, match=expected):
        probe(sample_video[0], limits)
