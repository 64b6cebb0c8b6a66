"""Cuts a span of a video into an h264/aac mp4, optionally reframed around the main face, with captions
written beside it and, when asked, burned into the picture (after the crop and scale, on the output frame).

Only the span is decoded: seek to the keyframe before it, drop frames before its first frame, and
trim audio to the sample at that frame's time so picture and sound start together at timestamp 0.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import av
import numpy as np

from adapters.media.caption_burner import CaptionBurner
from adapters.media.decoding import PacketDecoder, main_video, seek_before
from adapters.media.faces import CropPath, FaceTracker
from domain.captions import to_srt, to_vtt
from domain.errors import MediaError
from domain.media import Aspect, Clip, ClipOptions, MediaInfo, RenderedClip, Span
from domain.ports import Progress, no_progress

_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
_AAC_FRAME = 1024
_CAPTIONS = {"srt": to_srt, "vtt": to_vtt}


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


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]  # without the row padding


@attrs.define
class _AudioCut:
    """Trims decoded audio to [start, end) of source time and feeds it, resampled, to an aac stream."""

    container: av.container.OutputContainer
    stream: av.AudioStream
    resampler: av.AudioResampler
    end: float = 0.0
    start: float | None = None
    pending: list[av.AudioFrame] = attrs.field(factory=list)
    done: bool = False

    @classmethod
    def open(cls, container: av.container.OutputContainer, source: av.AudioStream, bitrate: int) -> _AudioCut:
        rate = source.rate if source.rate in _AAC_RATES else 48_000
        layout = "mono" if source.channels == 1 else "stereo"
        stream = container.add_stream("aac", rate=rate, layout=layout)
        stream.bit_rate = bitrate
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=_AAC_FRAME)
        return cls(container, stream, resampler)

    def begin(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        pending, self.pending = self.pending, []
        for frame in pending:
            self.add(frame)

    def add(self, frame: av.AudioFrame) -> None:
        if self.start is None:
            # The video's first frame fixes where sound starts; until it is decoded, hold on.
            self.pending.append(frame)
            return
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
        if (first, last) != (0, frame.samples):
            frame = _slice(frame, first, last)
        frame.pts = round((t - self.start) * rate) + first
        frame.time_base = Fraction(1, rate)
        for out in self.resampler.resample(frame):
            self.container.mux(self.stream.encode(out))

    def close(self) -> None:
        for out in self.resampler.resample(None):
            self.container.mux(self.stream.encode(out))
        self.container.mux(self.stream.encode(None))


def _slice(frame: av.AudioFrame, first: int, last: int) -> av.AudioFrame:
    samples: np.ndarray[Any, Any] = frame.to_ndarray()
    # Packed formats hold all channels interleaved in a single row.
    step = 1 if frame.format.is_planar else len(frame.layout.channels)
    cut = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples[:, first * step : last * step]),
        format=frame.format.name,
        layout=frame.layout.name,
    )
    cut.sample_rate = frame.sample_rate
    return cut


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
            start = self._cut(source, info, clip, options, partial, progress)
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
            path.write_text(_CAPTIONS[fmt](clip.words, offset=start), encoding="utf-8")
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
    ) -> float:
        """Writes the clip to ``out``; returns the source time of its first frame."""
        span = clip.span
        with av.open(str(source)) as src:
            vin = main_video(src)
            vin.thread_type = "AUTO"
            ain = src.streams.audio[0] if info.has_audio and src.streams.audio else None
            rate: Fraction = vin.average_rate or vin.guessed_rate or Fraction(round(info.fps * 1000), 1000)
            half_frame = 0.5 / float(rate)
            window = self._window(source, clip, options.aspect, info)
            with av.open(str(out), "w", format="mp4", container_options={"movflags": "+faststart"}) as dst:
                vout = dst.add_stream(
                    "libx264", rate=rate, options={"preset": self.preset, "crf": str(self.crf)}
                )
                vout.width, vout.height = output_size(window.width, window.height, self.max_side)
                vout.pix_fmt = "yuv420p"
                vout.codec_context.time_base = vout.time_base = _time_base(vin)
                vout.codec_context.thread_count = self.threads
                audio = _AudioCut.open(dst, ain, self.audio_bitrate) if ain is not None else None
                burner = None
                if options.burn_captions and clip.words:
                    burner = CaptionBurner.from_words(clip.words, span.start, vout.width, vout.height)
                # Frames carry the file's own timestamps: work in them, answer in media time.
                origin = info.start_time
                first = self._copy(
                    src,
                    dst,
                    vin,
                    span.start + origin,
                    span.duration,
                    half_frame,
                    window,
                    vout,
                    audio,
                    burner,
                    progress,
                )
                dst.mux(vout.encode(None))
                if audio is not None:
                    audio.close()
        return first - info.start_time

    def _copy(
        self,
        src: av.container.InputContainer,
        dst: av.container.OutputContainer,
        vin: av.VideoStream,
        start: float,
        duration: float,
        half_frame: float,
        window: _Window,
        vout: av.VideoStream,
        audio: _AudioCut | None,
        burner: CaptionBurner | None,
        progress: Progress,
    ) -> float:
        time_base = _time_base(vin)
        # Seek to a keyframe at or before the span, then decode forward to its first frame.
        seek_before(src, vin, start)
        first_t: float | None = None
        first_pts = 0
        end = start + duration
        video_done = False
        ain = src.streams.audio[0] if audio is not None else None
        decoder = PacketDecoder(Path(src.name).name)
        for packet in src.demux([vin] if ain is None else [vin, ain]):
            if video_done:
                # Sound may trail the picture in the file's interleaving; stop once it is past the end
                # (or never comes) rather than decoding the rest of a long source.
                if audio is None or audio.done or _packet_time(packet) > end + 1.0:
                    break
                if packet.stream is vin:
                    continue
            for frame in decoder.decode(packet):
                if isinstance(frame, av.AudioFrame) and audio is not None:
                    audio.add(frame)
                    continue
                if video_done or not isinstance(frame, av.VideoFrame):
                    continue
                t, pts = frame.time, frame.pts
                if t is None or pts is None or t < start - half_frame:
                    continue
                if first_t is None:
                    first_t, first_pts, end = t, pts, t + duration
                    if audio is not None:
                        audio.begin(t, end)
                if t >= end - half_frame:
                    video_done = True
                    continue
                out = window.cut(frame, t - start)
                if (out.width, out.height) != (vout.width, vout.height):
                    out = out.reformat(width=vout.width, height=vout.height, interpolation="AREA")
                if burner is not None:  # cues are timed from the span's start; a decoded frame is not ours
                    out = burner.burn(out, t - start, in_place=out is not frame)
                out.pts, out.time_base, out.pict_type = pts - first_pts, time_base, 0
                dst.mux(vout.encode(out))
                progress(min(0.99, (t - first_t) / max(duration, 1e-6)))
        decoder.check()
        if first_t is None:
            raise MediaError(f"no video frames in {start:.3f}..{end:.3f}")
        if audio is not None and audio.start is None:
            audio.begin(first_t, end)
        return first_t
