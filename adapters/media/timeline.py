"""One continuous media clock over files whose timestamps jump, as players show them.

MPEG-TS (and the few other formats FFmpeg marks as allowing discontinuities) may restart or leap its clock
mid-file: pieces joined with ``cat``, a capture across a programme change. Players carry on where the
picture was, and so do we. One pass over the packets finds where each stream jumps and the shift that makes
it continue; readers then demux through the same shifts (so decoded frames carry continuous times) and seek
by byte position to a keyframe of that clock, as the demuxer's own seek assumes timestamps that grow with
the position in the file. Probe, analysis and rendering all read the file through one ``timeline``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import cast

import attrs
import av

from adapters.media.decoding import PacketDecoder, main_video, per_file
from domain.errors import MediaError

# A stream that resumes this far past everything played so far has jumped, not paused (FFmpeg's own
# threshold is 10 s; a few seconds without any packet of any stream is no pause a player would show).
FORWARD_JUMP = 5.0
# Timestamps of reordered frames step back by a few frames; a stream going back further restarted its clock.
BACKWARD_JUMP = 1.0
# Seek this far before the target, so that sound stored just before the keyframe is read too.
_SEEK_LEAD = 0.5
_TS_DISCONT = cast(int, av.format.Flags.ts_discont.value)


@attrs.frozen(eq=False)
class Timeline:
    """From which byte position each stream's timestamps move by how much, and the main video's keyframes
    on the continuous clock (seconds of the file's own clock before its first jump)."""

    # stream index -> (byte positions, shifts in the stream's time base); both start with (-1, 0)
    shifts: Mapping[int, tuple[tuple[int, ...], tuple[int, ...]]] = attrs.field(factory=dict)
    keyframes: tuple[float, ...] = ()
    positions: tuple[int, ...] = ()  # byte position of each keyframe's packet
    video_end: float | None = None  # where the main video's last frame ends

    @property
    def jumps(self) -> bool:
        return bool(self.shifts)

    def demux(
        self, container: av.container.InputContainer, *streams: av.stream.Stream
    ) -> Iterator[av.Packet]:
        """``container.demux(*streams)`` with every timestamp on the continuous clock."""
        packets = container.demux(*streams)
        if not self.shifts:
            yield from packets
            return
        current: dict[int, int] = {}  # the shift of a packet whose position the demuxer does not know
        for packet in packets:
            cut = self.shifts.get(packet.stream_index)
            if cut is not None:
                if packet.pos is not None and packet.pos >= 0:
                    current[packet.stream_index] = cut[1][bisect_right(cut[0], packet.pos) - 1]
                shift = current.get(packet.stream_index, 0)
                if shift and packet.pts is not None:
                    packet.pts += shift
                if shift and packet.dts is not None:
                    packet.dts += shift
            yield packet

    def seek_before(self, container: av.container.InputContainer, stream: av.VideoStream, t: float) -> None:
        """Position ``container`` so decoding ``stream`` starts at a frame at or before ``t`` (seconds on
        this clock)."""
        if self.jumps:
            i = bisect_right(self.keyframes, t - _SEEK_LEAD) - 1
            container.seek(self.positions[i] if i >= 0 else 0, unsupported_byte_offset=True)
            return
        # Demuxers without an index (MPEG-TS) can land after the target; then try further back.
        time_base = stream.time_base or Fraction(1, av.time_base)
        for back in (0.0, 3.0, 15.0, 60.0):
            target = int(max(0.0, t - back) / time_base)
            container.seek(target, stream=stream, backward=True)
            decoder = PacketDecoder(Path(container.name).name)
            first = next(iter(decoder.frames(container.demux(stream))), None)
            if first is None or first.time is None or first.time <= t + 1e-3:
                container.seek(target, stream=stream, backward=True)
                return
        container.seek(0, stream=stream, backward=True)  # from the top, whatever it costs


CONTINUOUS = Timeline()


def timeline(container: av.container.InputContainer) -> Timeline:
    """The clock to read ``container`` by: its own, unless its format allows jumps and the file has some."""
    if not container.format.flags & _TS_DISCONT:
        return CONTINUOUS
    return _scan(Path(container.name))


@per_file
def _scan(path: Path) -> Timeline:
    with av.open(str(path)) as container:
        try:
            main = main_video(container).index
        except MediaError:
            main = -1
        streams = [s for s in container.streams if s.type in ("video", "audio") and s.time_base]
        jumps = _Jumps({s.index: Fraction(s.time_base or 1) for s in streams})
        seconds = {index: float(base) for index, base in jumps.time_bases.items()}  # per tick
        keyframes: list[tuple[float, int]] = []
        video_end = -math.inf
        try:
            for packet in container.demux(streams):
                stamp = packet.dts if packet.dts is not None else packet.pts
                if stamp is None:
                    continue
                index, pos = packet.stream_index, packet.pos
                tick = seconds[index]
                length = (packet.duration or 0) * tick
                offset, length = jumps.offset(index, -1 if pos is None else pos, stamp * tick, length)
                if index == main:
                    shown = (packet.pts if packet.pts is not None else stamp) * tick + offset
                    video_end = max(video_end, shown + length)
                    if packet.is_keyframe and pos is not None and pos >= 0:
                        keyframes.append((shown, pos))
        except av.FFmpegError:
            pass  # a damaged tail: the readers meet it and say so; the clock up to it stands
    if len(jumps.offsets) == 1:
        return CONTINUOUS
    keyframes.sort()
    return Timeline(
        shifts=jumps.shifts(),
        keyframes=tuple(t for t, _ in keyframes),
        positions=tuple(p for _, p in keyframes),
        video_end=video_end if video_end > -math.inf else None,
    )


@attrs.define
class _Jumps:
    """Follows each stream's timestamps in file order and opens a new offset where one jumps."""

    time_bases: dict[int, Fraction]
    offsets: list[float] = attrs.field(factory=lambda: [0.0])  # seconds added from each jump on
    segment: dict[int, int] = attrs.field(factory=dict)  # stream index -> its current offset's index
    last: dict[int, float] = attrs.field(factory=dict)  # continuous time of each stream's last packet
    end: dict[int, float] = attrs.field(factory=dict)  # ... and where that packet ends
    clock: float = -math.inf  # the furthest any stream has played
    cuts: dict[int, list[tuple[int, int]]] = attrs.field(factory=dict)  # (byte position, offset index)
    last_pos: dict[int, int] = attrs.field(factory=dict)
    step: dict[int, float] = attrs.field(factory=dict)  # each stream's last interval between packets

    def offset(self, index: int, pos: int, raw: float, length: float) -> tuple[float, float]:
        """The offset of stream ``index``'s packet at byte ``pos`` (-1: unknown), shown at ``raw`` seconds
        of the file's clock for ``length`` seconds (0: unknown, then as long as the interval before it);
        and that length. Follows the stream on."""
        segment = self.segment.get(index, 0)
        t = raw + self.offsets[segment]
        if index in self.last:
            expected = self.end[index]
            jumped = t > self.clock + FORWARD_JUMP or t < self.last[index] - BACKWARD_JUMP
        else:  # a stream's first packet: it only jumped if the clock already has
            expected = self.clock
            jumped = len(self.offsets) > 1 and abs(t - expected) > FORWARD_JUMP
        if jumped:
            segment = self._segment_for(raw, expected, segment)
            self.segment[index] = segment
            at = pos if pos >= 0 else self.last_pos.get(index, -1) + 1
            self.cuts.setdefault(index, []).append((at, segment))
            t = raw + self.offsets[segment]
        if pos >= 0:
            self.last_pos[index] = pos
        if index in self.last and 0 < t - self.last[index] < FORWARD_JUMP:
            self.step[index] = t - self.last[index]
        length = length if length > 0 else self.step.get(index, 0.0)
        self.last[index] = t
        self.end[index] = end = t + length
        if end > self.clock:
            self.clock = end
        return self.offsets[segment], length

    def _segment_for(self, raw: float, expected: float, current: int) -> int:
        """A later offset another stream opened at the same jump, or a new one continuing this stream."""
        for k in range(current + 1, len(self.offsets)):
            if abs(raw + self.offsets[k] - expected) <= FORWARD_JUMP:
                return k
        self.offsets.append(expected - raw)
        return len(self.offsets) - 1

    def shifts(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        return {
            index: (
                (-1, *(pos for pos, _ in cuts)),
                (0, *(round(self.offsets[segment] / self.time_bases[index]) for _, segment in cuts)),
            )
            for index, cuts in self.cuts.items()
        }
