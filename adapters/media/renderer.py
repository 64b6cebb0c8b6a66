"""Cuts a span of a video into an h264/aac mp4, optionally reframed around the main face, with captions
written beside it and, when asked, burned into the picture (after the crop and scale, on the output frame).

Only the span is decoded: seek to the keyframe before it and decode forward. The clip shows what a player
shows over the span: its first picture is the frame on screen at the span's start, each frame lasts until
the next, and the last is held to the span's end; the sound is cut to the span's samples, so picture and
sound start together at timestamp 0 and last as long as the span. Timestamps are read on the file's
continuous clock (adapters.media.timeline), so spans listed by the analysis are the content cut here.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import av
import numpy as np

from adapters.media.caption_burner import CaptionBurner
from adapters.media.decoding import PacketDecoder, main_audio, main_video
from adapters.media.faces import CropPath, FaceTracker
from adapters.media.timeline import Timeline, timeline
from domain.captions import to_srt, to_vtt
from domain.errors import MediaError
from domain.media import Aspect, Clip, ClipOptions, MediaInfo, RenderedClip, Span
from domain.ports import Progress, no_progress

_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
_AAC_FRAME = 1024
_CAPTIONS = {"srt": to_srt, "vtt": to_vtt}
# Frame times and span edges within this much are the same instant (time base rounding).
_SAME_INSTANT = 1e-4


def _even(value: float) -> int:
    v = int(value)
    return max(2, v - v % 2)


def crop_size(width: int, height: int, aspect: Aspect) -> tuple[int, int]:
    """The crop window for ``aspect`` at source resolution (never upscaled), with even sides."""
    if aspect is Aspect.SOURCE:
        return _even(width), _even(height)
    num, den = (9, 16) if aspect is Aspect.VERTICAL else (1, 1)
    if width * den > height * num:
        return min(_even(width), _even(round(height * num / den))), _even(height)
    return _even(width), min(_even(height), _even(round(width * den / num)))


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``width``×``height`` scaled down (never up) so the long side fits ``max_side``; sides stay even."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, _even(width * scale)), max(2, _even(height * scale))


@attrs.frozen
class _Window:
    """Where to cut each frame: a fixed size, a horizontal position that follows a crop path.

    Sizes are of the displayed picture: stored frames are first turned by ``rotation`` (clockwise).
    """

    width: int
    height: int
    source_width: int
    source_height: int
    path: CropPath
    rotation: int = 0

    def origin(self, t: float) -> tuple[int, int]:
        x = self.path.at(t) * self.source_width - self.width / 2
        # Even offsets keep the 2x2 chroma blocks of yuv420p aligned with the luma.
        x0 = int(np.clip(round(x / 2) * 2, 0, self.source_width - self.width))
        y0 = (self.source_height - self.height) // 4 * 2
        return x0 - x0 % 2, y0

    def cut(self, frame: av.VideoFrame, t: float) -> av.VideoFrame:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        x0, y0 = self.origin(t)
        if not self.rotation and (x0, y0, self.width, self.height) == (0, 0, frame.width, frame.height):
            return frame
        y, u, v = (_plane(frame, i) for i in range(3))
        if self.rotation:
            turns = -self.rotation // 90  # np.rot90 turns counter-clockwise
            y, u, v = (np.rot90(plane, turns) for plane in (y, u, v))
        cx, cy, cw, ch = x0 // 2, y0 // 2, self.width // 2, self.height // 2
        y = y[y0 : y0 + self.height, x0 : x0 + self.width]
        u = u[cy : cy + ch, cx : cx + cw]
        v = v[cy : cy + ch, cx : cx + cw]
        packed = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(self.height * 3 // 2, self.width)
        return av.VideoFrame.from_ndarray(packed, format="yuv420p")


def _time_base(stream: av.VideoStream) -> Fraction:
    if stream.time_base is None:
        raise MediaError("the video stream has no time base")
    return stream.time_base


def _packet_time(packet: av.Packet) -> float:
    if packet.pts is None or packet.time_base is None:
        return -1.0
    return float(packet.pts * packet.time_base)


def _shown_until(frame: av.VideoFrame, t: float, stream: av.VideoStream) -> float:
    """Where a video's last frame, shown from ``t``, leaves the screen."""
    if frame.duration and frame.time_base is not None:
        return t + float(frame.duration * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return t + (1 / float(rate) if rate else 0.0)


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]  # without the row padding


@attrs.define
class _AudioCut:
    """The sound of [start, end) of source time, as aac: downmixed (any layout) to stereo, or kept mono,
    by FFmpeg's resampler before it is cut, so only planar float mono or stereo is ever sliced here."""

    container: av.container.OutputContainer
    stream: av.AudioStream
    mixer: av.AudioResampler
    framer: av.AudioResampler  # regroups the cut samples into the encoder's frame size
    start: float
    end: float
    done: bool = False

    @classmethod
    def open(
        cls, container: av.container.OutputContainer, source: av.AudioStream, bitrate: int, span: Span
    ) -> _AudioCut:
        rate = source.rate if source.rate in _AAC_RATES else 48_000
        layout = "mono" if source.channels == 1 else "stereo"
        stream = container.add_stream("aac", rate=rate, layout=layout)
        stream.bit_rate = bitrate
        mixer = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        framer = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=_AAC_FRAME)
        return cls(container, stream, mixer, framer, span.start, span.end)

    def add(self, frame: av.AudioFrame | None) -> None:
        """Feed one decoded source frame (None at the end of the source)."""
        if not self.done:
            for mixed in self.mixer.resample(frame):
                self._cut(mixed)

    def _cut(self, frame: av.AudioFrame) -> None:
        t = frame.time
        if t is None or self.done:
            return
        rate = frame.sample_rate
        first = max(0, round((self.start - t) * rate))
        last = min(frame.samples, round((self.end - t) * rate))
        if round((self.end - t) * rate) <= frame.samples:
            self.done = True
        if last <= first:
            return
        samples: np.ndarray[Any, Any] = frame.to_ndarray()  # planar: one row per channel
        cut = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, first:last]), format="fltp", layout=frame.layout.name
        )
        cut.sample_rate = rate
        cut.pts = round((t - self.start) * rate) + first
        cut.time_base = Fraction(1, rate)
        self._encode(self.framer.resample(cut))

    def close(self) -> None:
        self.add(None)
        self._encode(self.framer.resample(None))
        self.container.mux(self.stream.encode(None))

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            self.container.mux(self.stream.encode(out))


@attrs.define
class _Picture:
    """Writes the clip's frames, each lasting until the next one starts and the last until the clip's end.

    A frame is written once the next one's time is known, with that duration on its packet. The encoder
    makes no B-frames: with them the last packet muxed is not the last frame shown, and the mp4 muxer,
    which ends the track at the last packet muxed, would cut the held last frame short.
    """

    container: av.container.OutputContainer
    stream: av.VideoStream
    window: _Window
    burner: CaptionBurner | None
    start: float  # source time of the clip's first instant
    end_pts: int  # the clip's length in the stream's time base
    time_base: Fraction
    pending: tuple[av.VideoFrame, int] | None = None
    durations: dict[int, int] = attrs.field(factory=dict)
    written: int = 0

    def show(self, frame: av.VideoFrame, t: float) -> None:
        """``frame`` is on screen from source time ``t`` (the first frame from the clip's start)."""
        pts = 0 if self.pending is None and not self.written else round((t - self.start) / self.time_base)
        if self.pending is not None and pts <= self.pending[1]:
            pts = self.pending[1]  # the same instant as the frame before: this one replaces it
        elif self.pending is not None:
            self._write(*self.pending, until=pts)
        self.pending = (frame, min(pts, self.end_pts - 1))

    def close(self) -> None:
        if self.pending is not None:
            self._write(*self.pending, until=self.end_pts)  # held to the end of the span
            self.pending = None
        self._mux(self.stream.encode(None))

    def _write(self, frame: av.VideoFrame, pts: int, until: int) -> None:
        clip_t = float(pts * self.time_base)
        out = self.window.cut(frame, clip_t)
        if (out.width, out.height) != (self.stream.width, self.stream.height):
            out = out.reformat(width=self.stream.width, height=self.stream.height, interpolation="AREA")
        if self.burner is not None:  # cues are timed from the span's start; a decoded frame is not ours
            out = self.burner.burn(out, clip_t, in_place=out is not frame)
        out.pts, out.time_base, out.pict_type = pts, self.time_base, 0
        self.durations[pts] = max(1, until - pts)
        self.written += 1
        self._mux(self.stream.encode(out))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts in self.durations:
                packet.duration = self.durations.pop(packet.pts)
            self.container.mux(packet)


@attrs.define
class PyAVClipRenderer:
    """ClipRenderer with PyAV: h264 (libx264) + aac mp4, face-following crops, srt/vtt and burned captions."""

    faces: FaceTracker | None = None
    preset: str = "veryfast"
    crf: int = 23
    audio_bitrate: int = 128_000
    threads: int = 0
    # Short-form platforms play 1080×1920 at most: a 4K source is scaled down, which also keeps encoding fast.
    max_side: int = 1920
    version: str = attrs.field(init=False, default="pyav-render-3")

    def render(
        self,
        source: Path,
        info: MediaInfo,
        clip: Clip,
        options: ClipOptions,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> RenderedClip:
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"clip_{clip.rank:02d}.mp4"
        partial = out_dir / f".clip_{clip.rank:02d}.part.mp4"
        try:
            self._cut(source, info, clip, options, partial, progress)
        except (av.FFmpegError, IndexError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise MediaError(f"cannot render clip {clip.rank}: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        captions = {}
        for fmt in sorted(options.caption_formats):
            path = out_dir / f"clip_{clip.rank:02d}.{fmt}"
            path.write_text(_CAPTIONS[fmt](clip.words, offset=clip.span.start), encoding="utf-8")
            captions[fmt] = str(path)
        progress(1.0)
        return RenderedClip(clip=clip, media_path=str(target), captions=captions)

    def _window(self, source: Path, clip: Clip, aspect: Aspect, info: MediaInfo) -> _Window:
        width, height = _even(info.width), _even(info.height)
        cw, ch = crop_size(width, height, aspect)
        path = CropPath.centred()
        if self.faces is not None and cw < width:
            origin = info.start_time  # the tracker reads the file's own timestamps
            span = Span(clip.span.start + origin, clip.span.end + origin)
            path = self.faces.track(source, span, cw / width, rotation=info.rotation)
        return _Window(cw, ch, width, height, path, info.rotation)

    def _cut(
        self, source: Path, info: MediaInfo, clip: Clip, options: ClipOptions, out: Path, progress: Progress
    ) -> None:
        """Writes the clip to ``out``."""
        # Frames carry the file's own (continuous) timestamps: work in them.
        span = Span(clip.span.start + info.start_time, clip.span.end + info.start_time)
        with av.open(str(source)) as src:
            vin = main_video(src)
            vin.thread_type = "AUTO"
            ain = main_audio(src) if info.has_audio else None
            rate: Fraction = vin.average_rate or vin.guessed_rate or Fraction(round(info.fps * 1000), 1000)
            window = self._window(source, clip, options.aspect, info)
            with av.open(str(out), "w", format="mp4", container_options={"movflags": "+faststart"}) as dst:
                vout = dst.add_stream(
                    "libx264", rate=rate, options={"preset": self.preset, "crf": str(self.crf), "bf": "0"}
                )
                vout.width, vout.height = output_size(window.width, window.height, self.max_side)
                vout.pix_fmt = "yuv420p"
                time_base = _time_base(vin)
                vout.codec_context.time_base = vout.time_base = time_base
                vout.codec_context.thread_count = self.threads
                audio = _AudioCut.open(dst, ain, self.audio_bitrate, span) if ain is not None else None
                burner = None
                if options.burn_captions and clip.words:
                    burner = CaptionBurner.from_words(clip.words, clip.span.start, vout.width, vout.height)
                end_pts = max(1, round(span.duration / time_base))
                picture = _Picture(dst, vout, window, burner, span.start, end_pts, time_base)
                self._copy(src, timeline(src), vin, ain, span, picture, audio, progress)
                picture.close()
                if audio is not None:
                    audio.close()

    def _copy(
        self,
        src: av.container.InputContainer,
        clock: Timeline,
        vin: av.VideoStream,
        ain: av.AudioStream | None,
        span: Span,
        picture: _Picture,
        audio: _AudioCut | None,
        progress: Progress,
    ) -> None:
        # Seek to a keyframe at or before the span, then decode forward to the frame on screen at its start.
        clock.seek_before(src, vin, span.start)
        held: tuple[av.VideoFrame, float] | None = None  # the latest frame at or before the span's start
        video_done = False
        decoder = PacketDecoder(Path(src.name).name)
        for packet in clock.demux(src, vin) if ain is None else clock.demux(src, vin, ain):
            if video_done:
                # Sound may trail the picture in the file's interleaving; stop once it is past the end
                # (or never comes) rather than decoding the rest of a long source.
                if audio is None or audio.done or _packet_time(packet) > span.end + 1.0:
                    break
                if packet.stream is vin:
                    continue
            for frame in decoder.decode(packet):
                if isinstance(frame, av.AudioFrame) and audio is not None:
                    audio.add(frame)
                    continue
                if video_done or not isinstance(frame, av.VideoFrame) or frame.time is None:
                    continue
                t = frame.time
                if t <= span.start + _SAME_INSTANT:
                    held = (frame, t)
                    continue
                if t >= span.end - _SAME_INSTANT:  # first shown after the span
                    video_done = True
                if held is not None:
                    picture.show(*held)
                    held = None
                if not video_done:
                    picture.show(frame, t)
                    progress(min(0.99, (t - span.start) / max(span.duration, 1e-6)))
        decoder.check()
        if held is not None and span.start < _shown_until(held[0], held[1], vin):
            picture.show(*held)  # the span starts while the video's last frame is on screen
        if picture.pending is None:
            raise MediaError(f"no video frames in {span.start:.3f}..{span.end:.3f}")
