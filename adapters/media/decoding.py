"""Which stream is the video, and decoding that survives a few damaged packets as players do (and fails
clearly when there are many)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import av
import structlog

from domain.errors import MediaError

log = structlog.get_logger(__name__)


def main_video(container: av.container.InputContainer) -> av.VideoStream:
    """The picture to clip: the first video stream that is not cover art (podcasts and music files carry
    their artwork as a one-picture video stream)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{Path(container.name).name}: no video stream")


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

    def frames(self, container: av.container.InputContainer, *streams: Any) -> Iterator[Any]:
        """Every frame of ``streams`` in file order; checks the damaged share at the end."""
        try:
            for packet in container.demux(*streams):
                yield from self.decode(packet)
        except av.FFmpegError as error:  # the container itself is broken past this point
            raise MediaError(f"{self.name}: corrupt media ({error})") from None
        self.check()


def seek_before(container: av.container.InputContainer, stream: av.VideoStream, t: float) -> None:
    """Position ``container`` so decoding ``stream`` starts at a frame at or before ``t`` (the file's own
    seconds). Demuxers without an index (MPEG-TS) can land after the target; then try further back."""
    time_base = stream.time_base or Fraction(1, av.time_base)
    for back in (0.0, 3.0, 15.0, 60.0):
        target = int(max(0.0, t - back) / time_base)
        container.seek(target, stream=stream, backward=True)
        first = next((f for f in PacketDecoder(Path(container.name).name).frames(container, stream)), None)
        if first is None or first.time is None or first.time <= t + 1e-3:
            container.seek(target, stream=stream, backward=True)
            return
    container.seek(0, stream=stream, backward=True)  # from the top, whatever it costs
