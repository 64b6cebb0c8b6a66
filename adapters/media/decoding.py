"""Which streams are the picture and the sound, and decoding that survives a few damaged packets as players
do (and fails clearly when there are many)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import av
import numpy as np
import structlog

from domain.errors import MediaError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# A picture this much smaller than the largest is a thumbnail or preview track, whatever its flags:
# muxers mark the first stream of each kind "default", so a thumbnail stored first carries the flag.
_THUMBNAIL_SHARE = 0.25
# Quieter than this (RMS dBFS) over the surveyed start is a silent track.
_SILENT_DB = -60.0
_SURVEY_SECONDS = 60.0
_SURVEY_PACKETS = 20_000
_SURVEY_RATE = 8000


def per_file(compute: Callable[[Path], T]) -> Callable[[Path], T]:
    """``compute(path)`` once per file version in this process: the stream choice and the clock are read
    by probe, analysis (from several threads) and every render, and must agree."""
    cache: dict[tuple[str, int, int], T] = {}
    lock = threading.Lock()

    def cached(path: Path) -> T:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with lock:  # one computation per file, even when threads ask at once
            if key not in cache:
                if len(cache) >= 16:
                    cache.pop(next(iter(cache)))
                cache[key] = compute(path)
            return cache[key]

    return cached


def main_video(container: av.container.InputContainer) -> av.VideoStream:
    """The picture to clip, chosen as players do: never cover art (podcasts and music files carry their
    artwork as a one-picture video stream); among several, one with packets, no thumbnail-sized track over
    a real picture, then the default track, then the largest picture, then the first."""
    pictures = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not pictures:
        raise MediaError(f"{Path(container.name).name}: no video stream")
    if len(pictures) == 1:
        return pictures[0]
    present = _survey(Path(container.name)).packets
    largest = max(_area(s) for s in pictures)

    def rank(stream: av.VideoStream) -> tuple[bool, bool, bool, int, int]:
        return (
            stream.index in present,
            _area(stream) >= _THUMBNAIL_SHARE * largest,
            bool(stream.disposition & av.stream.Disposition.default),
            _area(stream),
            -stream.index,
        )

    return max(pictures, key=rank)


def main_audio(container: av.container.InputContainer) -> av.AudioStream | None:
    """The sound to analyse, transcribe and cut, chosen as players do but by ear first: a track with
    signal over a silent one (the flag "default" is on whatever track a muxer wrote first), then the
    default track, then the most channels, then the first. None without an audio stream."""
    tracks = list(container.streams.audio)
    if len(tracks) <= 1:
        return tracks[0] if tracks else None
    survey = _survey(Path(container.name))

    def rank(stream: av.AudioStream) -> tuple[bool, bool, bool, int, int]:
        return (
            stream.index in survey.packets,
            survey.loudness.get(stream.index, -math.inf) > _SILENT_DB,
            bool(stream.disposition & av.stream.Disposition.default),
            stream.channels,
            -stream.index,
        )

    return max(tracks, key=rank)


def _area(stream: av.VideoStream) -> int:
    return max(0, stream.codec_context.width) * max(0, stream.codec_context.height)


@attrs.frozen
class _Survey:
    packets: frozenset[int]  # indices of the streams that have packets in the file's first part
    loudness: dict[int, float]  # RMS dBFS of each audio stream over its first seconds


@per_file
def _survey(path: Path) -> _Survey:
    """Which streams carry packets, and how loud each audio stream is, over the start of the file."""
    present: set[int] = set()
    squares: dict[int, float] = {}
    heard: dict[int, int] = {}  # samples at _SURVEY_RATE
    try:
        with av.open(str(path)) as container:
            audio = list(container.streams.audio) if len(container.streams.audio) > 1 else []
            mixers = {
                s.index: av.AudioResampler(format="flt", layout="mono", rate=_SURVEY_RATE) for s in audio
            }
            decoder = PacketDecoder(path.name)
            for count, packet in enumerate(container.demux([*container.streams.video, *audio])):
                enough = all(heard.get(i, 0) >= _SURVEY_SECONDS * _SURVEY_RATE for i in mixers)
                if count >= _SURVEY_PACKETS or (enough and count >= 500):
                    break
                index = packet.stream_index
                if packet.size:
                    present.add(index)
                if (mixer := mixers.get(index)) is None:
                    continue
                for frame in decoder.decode(packet):
                    for out in mixer.resample(frame):
                        block = out.to_ndarray().ravel().astype(np.float64)
                        squares[index] = squares.get(index, 0.0) + float(block @ block)
                        heard[index] = heard.get(index, 0) + block.size
    except (av.FFmpegError, MediaError, ValueError) as error:  # the readers will say what is wrong
        log.warning("media.survey_failed", file=path.name, error=str(error))
    loudness = {i: 10 * math.log10(max(total / max(heard[i], 1), 1e-12)) for i, total in squares.items()}
    return _Survey(frozenset(present), loudness)


@attrs.define
class PacketDecoder:
    """Decodes packet by packet, skipping those FFmpeg rejects while they stay a small share.

    A single bad packet (a bit flip, a broken upload tail) costs a frame or two; a file where more than
    ``tolerance`` of the packets (and more than ``floor`` of them) are damaged is corrupt, and says so.
    """

    name: str
    tolerance: float = 0.05
    floor: int = 3
    packets: int = 0
    damaged: int = 0

    def decode(self, packet: av.Packet) -> list[Any]:
        self.packets += 1
        try:
            return list(packet.decode())
        except MemoryError:  # FFmpeg's ENOMEM (av.error.MemoryError): the process's limit, not this packet
            raise
        except av.FFmpegError as error:
            self.damaged += 1
            if self.damaged == 1:
                log.warning("media.damaged_packet", file=self.name, error=str(error))
            if self.damaged > 25:
                self.check()
            return []

    def check(self) -> None:
        """Raise MediaError when the damaged share is past the tolerance."""
        if self.damaged >= self.floor and self.damaged > self.tolerance * self.packets:
            raise MediaError(
                f"{self.name}: corrupt media ({self.damaged} of {self.packets} packets do not decode)"
            )

    def frames(self, packets: Iterable[av.Packet]) -> Iterator[Any]:
        """Every frame decoded from ``packets`` (a demux), in order; checks the damaged share at the end."""
        try:
            for packet in packets:
                yield from self.decode(packet)
        except MemoryError:
            raise  # reported as out of memory, never as a corrupt file
        except av.FFmpegError as error:  # the container itself is broken past this point
            raise MediaError(f"{self.name}: corrupt media ({error})") from None
        self.check()
