"""media_kind: real containers written by PyAV pass from their first bytes; pages, images, scraps do not."""

from __future__ import annotations

import io
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
import pytest

from adapters.media.signature import HEAD_BYTES, media_kind
from domain.errors import UnsupportedMedia

# (file name, PyAV format, video codec or None, audio codec or None) -> the kind media_kind must name.
CONTAINERS = {
    ("clip.mp4", "mp4", "libx264", "aac"): "mp4",
    ("clip.mov", "mov", "libx264", "aac"): "mov",
    ("clip.mkv", "matroska", "libx264", "aac"): "mkv",
    ("clip.webm", "webm", "libvpx", "libopus"): "webm",
    ("clip.avi", "avi", "mpeg4", None): "avi",
    ("clip.ts", "mpegts", "mpeg2video", "mp2"): "mpeg-ts",
    ("clip.wav", "wav", None, "pcm_s16le"): "wav",
    ("clip.flac", "flac", None, "flac"): "flac",
}


def _write(path: Path, container_format: str, video_codec: str | None, audio_codec: str | None) -> None:
    """Half a second of grey frames and silence: enough for a muxer to write its real header."""
    with av.open(str(path), "w", format=container_format) as container:
        # Every stream exists before the first packet: the muxer writes its header then. Codec names are
        # runtime strings, so PyAV's stubs cannot tell which stream type comes back.
        video = audio = None
        if video_codec is not None:
            video = cast(av.VideoStream, container.add_stream(video_codec, rate=25))
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        if audio_codec is not None:
            audio = cast(av.AudioStream, container.add_stream(audio_codec, rate=48_000, layout="stereo"))
        if video is not None:
            grey = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24")
            for index in range(12):
                grey.pts, grey.time_base = index, Fraction(1, 25)
                container.mux(video.encode(grey))
            container.mux(video.encode(None))
        if audio is not None:
            samples = audio.codec_context.frame_size or 1024
            for index in range(24):
                silence = av.AudioFrame(format=audio.format.name, layout="stereo", samples=samples)
                for plane in silence.planes:
                    plane.update(bytes(plane.buffer_size))
                silence.sample_rate, silence.pts = 48_000, index * samples
                silence.time_base = Fraction(1, 48_000)
                container.mux(audio.encode(silence))
            container.mux(audio.encode(None))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("signatures")
    heads = {}
    for (name, container_format, video_codec, audio_codec), kind in CONTAINERS.items():
        path = folder / name
        _write(path, container_format, video_codec, audio_codec)
        heads[kind] = path.read_bytes()[:HEAD_BYTES]
    return heads


@pytest.mark.parametrize("kind", CONTAINERS.values())
def test_real_containers_are_recognised_from_their_head(written: dict[str, bytes], kind: str) -> None:
    assert len(written[kind]) == HEAD_BYTES
    assert media_kind(written[kind]) == kind


def test_the_shared_sample_video_is_mp4(sample_video: tuple[Path, object]) -> None:
    with sample_video[0].open("rb") as handle:
        assert media_kind(handle.read(HEAD_BYTES)) == "mp4"


def _png() -> bytes:
    ok, encoded = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    return encoded.tobytes()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("video.mp4", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"<!DOCTYPE html><html><head><title>Watch this</title></head><body></body></html>", "HTML"),
        (b"\n  <html lang='en'>" + b"x" * 400, "HTML"),
        (b"Access denied: this link has expired.\n", "looks like text"),
        (_png(), "looks like a PNG image, not a video"),
        (_zip(), "looks like a ZIP archive"),
        (b"MThd\x00\x00\x00\x06\x00\x01", "looks like a MIDI file"),  # audio, not decodable
        (b"", "empty"),
        (b"\x00\x00\x00", "does not start like any video"),
        (b"\x1a\x45\xdf\xa3", "does not start like any video"),  # an EBML header, but no doctype
        (b"\x47" + bytes(187), "does not start like any video"),  # a single MPEG-TS packet is no stream
        (b"\x47" + bytes(200), "does not start like any video"),  # ... nor one without a second sync byte
        (bytes(range(256)) * 2, "does not start like any video"),
    ],
)
def test_everything_else_is_refused(head: bytes, message: str) -> None:
    with pytest.raises(UnsupportedMedia, match=message):
        media_kind(head)


def test_short_heads_of_real_media_are_refused(written: dict[str, bytes]) -> None:
    # A body that ends within its first bytes is no playable file, whatever its first bytes say.
    for kind in ("mp4", "mkv", "mpeg-ts"):
        with pytest.raises(UnsupportedMedia):
            media_kind(written[kind][:3])
