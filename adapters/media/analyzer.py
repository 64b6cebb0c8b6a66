"""PyAV MediaAnalyzer: per-second visual and audio features, shot cuts and speech activity in one pass.

The video is cut into ``decoders`` time ranges, each decoded single-threaded by its own thread (PyAV,
OpenCV and numpy release the GIL), which beats one frame-threaded decoder on few cores. Only sampled
frames are converted, straight to a small RGB array; nothing larger than one frame is kept.
"""

from __future__ import annotations

import itertools
import math
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path

import attrs
import av
import numpy as np

from adapters.media.audio_pass import AudioStats, audio_pass
from adapters.media.decoding import PacketDecoder, main_video
from adapters.media.probe import MediaLimits, probe
from adapters.media.shots import ContentScorer, ShotFrame, pick_cuts
from adapters.media.timeline import timeline
from adapters.speech.vad import SileroVad
from domain.errors import MediaError
from domain.media import MEDIA_FEATURES, Analysis, MediaInfo
from domain.ports import Progress, no_progress


@attrs.define
class _Part:
    """Per-sample visual values of one time range, plus its edge frames for joining with neighbours."""

    times: list[float] = attrs.field(factory=list)
    brightness: list[float] = attrs.field(factory=list)
    colourfulness: list[float] = attrs.field(factory=list)
    motion: list[float] = attrs.field(factory=list)
    shot_score: list[float] = attrs.field(factory=list)
    first: tuple[np.ndarray, ShotFrame] | None = None
    last: tuple[np.ndarray, ShotFrame] | None = None
    done: float = 0.0  # fraction of this range decoded, read by the progress loop


@attrs.define
class PyAVMediaAnalyzer:
    """MediaAnalyzer on PyAV (+ silero-vad when given): see MEDIA_FEATURES for the columns."""

    limits: MediaLimits = attrs.field(factory=MediaLimits)
    vad: SileroVad | None = None
    sample_fps: float = 3.0
    analysis_width: int = 160
    decoders: int = 2
    shot_threshold: float = 27.0
    min_shot_seconds: float = 0.6
    # Parts shorter than this are not worth a second decoder's seek and keyframe run-in.
    min_part_seconds: float = 30.0
    scorer: ContentScorer = attrs.field(factory=ContentScorer)
    version: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.sample_fps < 2:
            raise ValueError("sample_fps must be at least 2 (motion and cuts need two samples a second)")
        vad = "silero" if self.vad is not None else "novad"
        self.version = f"pyav4-{self.sample_fps:g}fps-{self.analysis_width}w-t{self.shot_threshold:g}-{vad}"

    def probe(self, path: Path) -> MediaInfo:
        return probe(path, self.limits)

    def analyze(self, path: Path, info: MediaInfo, progress: Progress = no_progress) -> Analysis:
        seconds = max(1, math.ceil(info.duration - 0.05))  # a trailing sliver under 50 ms gets no row
        n_parts = max(1, min(self.decoders, int(info.duration // self.min_part_seconds)))
        # Part edges sit on the sampling grid, so each grid point falls to exactly one part and the
        # joined samples are the ones a single decoder would take.
        edges = np.round(np.linspace(0.0, info.duration, n_parts + 1) * self.sample_fps) / self.sample_fps
        edges[-1] = info.duration
        parts = [_Part() for _ in range(n_parts)]
        height = max(2, round(self.analysis_width * info.height / info.width / 2) * 2)
        audio_progress = [0.0]
        with ThreadPoolExecutor(max_workers=n_parts + 1, thread_name_prefix="analyze") as pool:
            futures: list[Future[object]] = [
                pool.submit(
                    self._decode_part,
                    path,
                    float(a),
                    float(b),
                    b >= info.duration,
                    part,
                    height,
                    info.start_time,
                )
                for a, b, part in zip(edges[:-1], edges[1:], parts, strict=True)
            ]
            audio: Future[AudioStats] | None = None
            if info.has_audio:
                audio = pool.submit(audio_pass, path, seconds, self.vad, audio_progress, info.start_time)
                futures.append(audio)  # type: ignore[arg-type]  # Future is invariant; only waited on here
            _wait_reporting(futures, parts, audio_progress, progress)
            stats = audio.result() if audio is not None else AudioStats.silent(seconds)
        visual, cuts = self._join(parts, seconds)
        features = np.column_stack([visual, stats.columns()]).astype(np.float32)
        progress(1.0)
        return Analysis(info, MEDIA_FEATURES, features, cuts, stats.speech)

    def _decode_part(
        self, path: Path, start: float, end: float, to_end: bool, part: _Part, height: int, origin: float
    ) -> None:
        """Samples [start, end) of media time; ``origin`` is the file's first timestamp."""
        step = 1.0 / self.sample_fps
        next_t = math.ceil(start * self.sample_fps - 1e-6) / self.sample_fps
        with av.open(str(path)) as container:
            stream = main_video(container)
            ctx = stream.codec_context
            ctx.thread_count = 1  # parallelism comes from the parts; frame threads only add latency here
            ctx.skip_frame = "NONREF"  # B-frames are never needed at a few samples a second
            # Deblocking is invisible at analysis size and costs 15–20% of decoding.
            ctx.options = {"skip_loop_filter": "all"}
            clock = timeline(container)
            if start > 0:
                clock.seek_before(container, stream, start + origin)
            time_base = float(stream.time_base or 0) or 1 / av.time_base
            prev: tuple[np.ndarray, ShotFrame] | None = None
            decoder = PacketDecoder(path.name)
            for frame in decoder.frames(clock.demux(container, stream)):
                if frame.pts is None:
                    continue
                t = frame.pts * time_base - origin
                if t >= end and not to_end:
                    break
                if t < next_t - 1e-6:
                    continue
                # AREA: averaging downscale, half the cost of the default bicubic and without aliasing.
                rgb = frame.to_ndarray(
                    width=self.analysis_width, height=height, format="rgb24", interpolation="AREA"
                )
                prev = self._sample(part, t, rgb, prev)
                next_t = (math.floor(t * self.sample_fps + 1e-6) + 1) * step
                part.done = min(1.0, (t - start) / max(end - start, 1e-6))
            decoder.check()
        part.last = prev
        part.done = 1.0

    def _sample(
        self, part: _Part, t: float, rgb: np.ndarray, prev: tuple[np.ndarray, ShotFrame] | None
    ) -> tuple[np.ndarray, ShotFrame]:
        grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        shot = self.scorer.prepare(rgb)
        part.times.append(t)
        part.brightness.append(float(grey.mean()) / 255.0)
        part.colourfulness.append(colourfulness(rgb))
        if prev is None:
            part.first = (grey, shot)
            part.motion.append(math.nan)  # filled in when the parts are joined
            part.shot_score.append(math.nan)
        else:
            part.motion.append(float(np.abs(grey - prev[0]).mean()) / 255.0)
            part.shot_score.append(self.scorer.score(prev[1], shot))
        return grey, shot

    def _join(self, parts: list[_Part], seconds: int) -> tuple[np.ndarray, tuple[float, ...]]:
        for before, after in itertools.pairwise(parts):
            if before.last is not None and after.first is not None and after.motion:
                after.motion[0] = float(np.abs(after.first[0] - before.last[0]).mean()) / 255.0
                after.shot_score[0] = self.scorer.score(before.last[1], after.first[1])
        times = np.array([t for p in parts for t in p.times])
        if times.size == 0:
            raise MediaError("no video frame could be decoded")
        scores = np.nan_to_num(np.array([s for p in parts for s in p.shot_score]))
        cuts = pick_cuts(times, scores, self.shot_threshold, self.min_shot_seconds)
        per_sample = np.column_stack(
            [
                [v for p in parts for v in p.brightness],
                [v for p in parts for v in p.colourfulness],
                np.nan_to_num([v for p in parts for v in p.motion]),
            ]
        )
        index = np.clip(times.astype(np.int64), 0, seconds - 1)
        counts = np.bincount(index, minlength=seconds)
        sums = np.stack([np.bincount(index, per_sample[:, c], minlength=seconds) for c in range(3)], 1)
        means = _fill_forward(sums / np.maximum(counts, 1)[:, None], counts > 0)
        cut_index = np.clip(np.array(cuts, np.float64).astype(np.int64), 0, seconds - 1)
        shot_change = np.bincount(cut_index, minlength=seconds).astype(np.float64)
        return np.column_stack([means, shot_change]), cuts


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M: 0 for grey, ~15 slightly, ~60 quite, >100 very colourful."""
    r, g, b = (rgb[:, :, i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def _fill_forward(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Seconds without a sample (gaps in variable-rate video) repeat the last second that had one."""
    if present.all() or not present.any():
        return values
    idx = np.where(present, np.arange(len(present)), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(present))
    idx[:first] = first
    return values[idx]


def _wait_reporting(
    futures: list[Future[object]], parts: list[_Part], audio: list[float], progress: Progress
) -> None:
    """Report progress from the calling thread (callbacks need not be thread-safe) until all finish."""
    stop = threading.Event()
    while not stop.is_set():
        done, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
        for f in done:
            f.result()  # re-raises a worker's error here
        if not pending:
            stop.set()
        video = sum(p.done for p in parts) / len(parts)
        progress(min(0.99, 0.8 * video + 0.2 * audio[0]))
