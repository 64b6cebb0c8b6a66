"""PacketDecoder: a damaged packet is skipped and counted; running out of memory is never called damage."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import attrs
import av
import pytest

from adapters.media.decoding import PacketDecoder
from domain.errors import MediaError


@attrs.define
class FakePacket:
    error: Exception | None = None

    def decode(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        return ["frame"]


def _packets(*packets: FakePacket) -> Iterator[av.Packet]:
    yield from packets  # type: ignore[misc]


def test_a_damaged_packet_is_skipped_while_damage_stays_rare() -> None:
    decoder = PacketDecoder("talk.mp4")
    bad = FakePacket(av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input"))
    frames = list(decoder.frames(_packets(*[FakePacket()] * 40, bad, *[FakePacket()] * 40)))
    assert len(frames) == 80 and decoder.damaged == 1


def test_many_damaged_packets_are_a_corrupt_file() -> None:
    bad = FakePacket(av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input"))
    with pytest.raises(MediaError, match="corrupt media"):
        list(PacketDecoder("talk.mp4").frames(_packets(*[FakePacket(), bad] * 20)))


def test_ffmpeg_out_of_memory_is_raised_as_memory_not_damage() -> None:
    decoder = PacketDecoder("talk.mp4")
    oom = FakePacket(av.error.MemoryError(errno.ENOMEM, "Cannot allocate memory"))
    with pytest.raises(MemoryError):
        list(decoder.frames(_packets(FakePacket(), oom, FakePacket())))
    assert decoder.damaged == 0
