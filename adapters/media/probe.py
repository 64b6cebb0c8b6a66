"""Reads a file's container facts with PyAV and refuses files that must not be decoded."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import attrs
import av

from adapters.media.decoding import PacketDecoder, main_audio, main_video
from adapters.media.timeline import Timeline, timeline
from domain.errors import MediaError, MediaLimitExceeded, UnsupportedMedia
from domain.media import MediaInfo

# First bytes of containers we would expect a video in; a file that starts like one but will not open
# was cut short or damaged, which deserves a different message from "this is not media at all".
_MAGIC = (b"ftyp", b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba", b"G@")
# Pictures FFmpeg opens as one-stream "videos": a still image or an animation is not something to clip.
_IMAGE_MAGIC = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_IMAGE_FORMATS = frozenset({"image2", "gif", "apng", "webp"})
# HEIF and AVIF pictures open as mp4 ("mov,mp4,...") and tell themselves apart by their major brand.
_STILL_BRANDS = {b"avif": "AVIF", b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF"}
_ANIMATED_BRANDS = {b"avis": "AVIF", b"hevc": "HEIC", b"hevx": "HEIC", b"msf1": "HEIF"}
# The smallest picture side worth clipping (and that the reframing and analysis scaling can work with).
MIN_SIDE = 32


@attrs.frozen
class MediaLimits:
    max_seconds: float = 4 * 3600.0
    max_pixels: int = 3840 * 2160
    max_bytes: int = 8 * 1024**3


def probe(path: Path, limits: MediaLimits) -> MediaInfo:
    """Container facts of ``path``; raises MediaError / MediaLimitExceeded with a one-line message."""
    name = path.name
    if not path.is_file():
        raise MediaError(f"{name}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{name}: file is empty")
    if size > limits.max_bytes:
        raise MediaLimitExceeded(f"{name}: {size} bytes is over the limit of {limits.max_bytes} bytes")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        if (image := _image_signature(path)) is not None:
            raise UnsupportedMedia(f"{name}: a {image} image, not a video") from None
        if _looks_like_media(path):
            raise MediaError(f"{name}: truncated or corrupt media ({_reason(e)})") from None
        raise MediaError(f"{name}: not a media file") from None
    with container:
        if (picture := _picture_kind(container, path)) is not None:
            raise UnsupportedMedia(f"{name}: {picture}, not a video")
        # Podcasts and music files carry their cover art as a one-picture "video" stream.
        if not any(not s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video):
            kind = "audio with cover art" if container.streams.video else "audio-only or data file"
            raise MediaError(f"{name}: no video stream ({kind})")
        video = main_video(container)
        audio = main_audio(container)
        width, height = video.codec_context.width, video.codec_context.height
        if width <= 0 or height <= 0:
            raise MediaError(f"{name}: truncated or corrupt media (frame size unknown)")
        if min(width, height) < MIN_SIDE:
            raise UnsupportedMedia(
                f"{name}: the picture is {width}x{height}, too small to clip "
                f"(both sides must be at least {MIN_SIDE} pixels)"
            )
        if width * height > limits.max_pixels:
            raise MediaLimitExceeded(
                f"{name}: {width}x{height} is over the limit of {limits.max_pixels} pixels per frame"
            )
        clock = timeline(container)
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        duration = _duration(container, video, clock, origin)
        if duration is None or duration <= 0:
            raise MediaError(f"{name}: truncated or corrupt media (duration unknown)")
        if duration > limits.max_seconds:
            raise MediaLimitExceeded(
                f"{name}: {duration:.0f} s is over the limit of {limits.max_seconds:.0f} s"
            )
        rate = video.average_rate or video.guessed_rate
        info = MediaInfo(
            duration=duration,
            width=width,
            height=height,
            fps=float(rate) if rate else 0.0,
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            has_audio=audio is not None,
            size_bytes=size,
            format_name=container.format.name,
            start_time=origin,
        )
    checked = _check_decodes(path, duration, info.start_time, clock)
    if checked.video_end is not None:
        info = attrs.evolve(info, duration=checked.video_end)
    if checked.rotation in (90, 270):
        info = attrs.evolve(info, width=info.height, height=info.width, rotation=checked.rotation)
    elif checked.rotation:
        info = attrs.evolve(info, rotation=checked.rotation)
    return info


def _duration(
    container: av.container.InputContainer, video: av.VideoStream, clock: Timeline, origin: float
) -> float | None:
    if clock.video_end is not None:  # the file's clock jumps: its own durations span the jumps
        return clock.video_end - origin
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def display_rotation(frame: av.VideoFrame) -> int:
    """Clockwise degrees to turn ``frame`` for display, from its display matrix (PyAV gives it
    counter-clockwise), snapped to a quarter turn."""
    return round(-float(frame.rotation or 0) / 90.0) % 4 * 90


@attrs.frozen
class _Checked:
    rotation: int
    video_end: float | None  # where the picture ends, when it ends well before the container says


def _check_decodes(path: Path, duration: float, origin: float, clock: Timeline) -> _Checked:
    """The first frame must decode and the packets of the last seconds must be there.

    A file whose header survived but whose data was cut off opens fine and claims its full duration;
    reading (not decoding) the tail packets of every stream finds that cheaply, whatever the keyframe
    interval. A picture that legitimately stops before the sound (the container's duration is the longest
    stream's) is measured, so clips are only cut where there is video. A file whose clock jumps was read
    to its end already, to find the jumps.
    """
    try:
        with av.open(str(path)) as container:
            stream = main_video(container)
            first = next(iter(PacketDecoder(path.name).frames(container.demux(stream))), None)
            if first is None:
                raise MediaError(f"{path.name}: truncated or corrupt media (no frame decodes)")
            if clock.jumps:
                return _Checked(display_rotation(first), None)
            tail = max(0.0, duration - 1.5)
            container.seek(int((tail + origin) * av.time_base))
            reached, video_end = _scan(container.demux(), tail, origin)
            if not reached:
                raise MediaError(f"{path.name}: truncated or corrupt media (the file ends early)")
            if video_end is None or video_end < tail:
                container.seek(0)
                _, video_end = _scan(container.demux(stream), math.inf, origin)
                if video_end is None:
                    raise MediaError(f"{path.name}: truncated or corrupt media (no video packets)")
                return _Checked(display_rotation(first), video_end)
            return _Checked(display_rotation(first), None)
    except av.FFmpegError as e:
        raise MediaError(f"{path.name}: truncated or corrupt media ({_reason(e)})") from None


def _scan(packets: Iterator[av.Packet], tail: float, origin: float) -> tuple[bool, float | None]:
    """Whether any packet reaches ``tail``, and where the last video packet ends (media times)."""
    reached, video_end = False, None
    for packet in packets:
        if packet.is_corrupt:
            break
        if packet.pts is None or packet.time_base is None:
            continue
        t = float(packet.pts * packet.time_base) - origin
        reached = reached or t >= tail
        if packet.stream.type == "video":
            end = t + float((packet.duration or 0) * packet.time_base)
            video_end = end if video_end is None else max(video_end, end)
    return reached, video_end


def _is_image_format(format_name: str) -> bool:
    """FFmpeg's demuxers for single pictures (``png_pipe``, ``jpeg_pipe``, ``webp_pipe``, ...) and
    animations (GIF, APNG)."""
    return any(name in _IMAGE_FORMATS or name.endswith("_pipe") for name in format_name.split(","))


def _picture_kind(container: av.container.InputContainer, path: Path) -> str | None:
    """'a still image (PNG)' or 'an animation (GIF)' for a picture file, for the message; None for others."""
    with path.open("rb") as f:
        head = f.read(64)
    if head[4:8] == b"ftyp" and (brand := head[8:12]) in _STILL_BRANDS | _ANIMATED_BRANDS:
        if brand in _ANIMATED_BRANDS:
            return f"an animation ({_ANIMATED_BRANDS[brand]})"
        return f"a still image ({_STILL_BRANDS[brand]})"
    if not _is_image_format(container.format.name):
        return None
    kind = _image_signature(path) or container.format.name.split(",")[0].removesuffix("_pipe").upper()
    # An animated WebP says so in its extended header (VP8X, animation flag); FFmpeg may not decode it.
    if kind == "WEBP" and head[12:16] == b"VP8X" and len(head) > 20 and head[20] & 0x02:
        return "an animation (WEBP)"
    frames = 0
    try:
        for stream in container.streams.video[:1]:
            for _ in container.decode(stream):
                frames += 1
                if frames > 1:
                    return f"an animation ({kind})"
    except av.FFmpegError:
        pass  # a picture that does not decode is still a picture
    return f"a still image ({kind})"


def _image_signature(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in _IMAGE_MAGIC.items() if head.startswith(magic)), None)


def _looks_like_media(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(12)
    return any(magic in head for magic in _MAGIC)


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return " ".join(str(text).split())[:120]
