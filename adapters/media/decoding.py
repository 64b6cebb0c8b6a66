"""Which stream is the video, and decoding that survives a few damaged packets as players do (and fails
clearly when there are many)."""

from __future__ import annotations

from collections.abc import Iterator
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
