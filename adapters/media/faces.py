"""Where the main face is over a clip, as a smooth horizontal crop path for reframing (9:16, 1:1).

Detection samples a few frames a second at reduced size with OpenCV's Haar cascade; the choice of the
main face and the smoothing are pure functions so they can be tested without media.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import attrs
import av
import cv2
import numpy as np

from adapters.media.decoding import PacketDecoder, main_video
from adapters.media.timeline import timeline
from domain.errors import DependencyUnavailable, MediaError
from domain.media import Span

# (x, y, w, h) of a detected face, in pixels of the frame it was found in.
Box = tuple[int, int, int, int]


@attrs.frozen(eq=False)
class CropPath:
    """Horizontal centre of the crop window over a clip, as a fraction of the source width.

    ``times`` are seconds from the clip's start; between samples the centre is interpolated.
    """

    times: np.ndarray
    centres: np.ndarray

    @classmethod
    def centred(cls) -> CropPath:
        return cls(np.zeros(1), np.full(1, 0.5))

    def at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.centres))


class FaceTracker(Protocol):
    """Follows the main face of a span of a video file."""

    def track(self, source: Path, span: Span, window: float, rotation: int = 0) -> CropPath:
        """A crop-centre path for a window ``window`` wide (a fraction of the displayed width); frames
        are turned ``rotation`` degrees clockwise for display first."""
        ...


@attrs.frozen
class Smoothing:
    """How the crop moves: steady shots matter more than following every small head move."""

    median: int = 5  # samples; removes single-sample misdetections
    alpha: float = 0.35  # exponential smoothing per sample
    dead_zone: float = 0.04  # fraction of the width the face may move before the crop follows
    max_speed: float = 0.25  # fraction of the width per second; faster pans look like a glitch
    jump: float = 0.3  # a move this large is a shot cut or another speaker: cut to it rather than pan


def main_face_centres(detections: Sequence[Sequence[Box]], width: int) -> list[float | None]:
    """Per sample, the horizontal centre (a fraction of ``width``) of the main face, or None.

    The main face is the one that is large and seen often: each box scores its area times the number
    of samples that have a box near the same place, and each sample keeps its best-scoring box.
    """
    centres = [[(x + w / 2) / width for x, _, w, _ in boxes] for boxes in detections]
    result: list[float | None] = []
    for boxes, xs in zip(detections, centres, strict=True):
        if not boxes:
            result.append(None)
            continue
        scores = [
            box[2] * box[3] * sum(any(abs(x - o) < 0.1 for o in other) for other in centres)
            for box, x in zip(boxes, xs, strict=True)
        ]
        result.append(xs[int(np.argmax(scores))])
    return result


def smooth_path(
    times: Sequence[float],
    centres: Sequence[float | None],
    window: float,
    smoothing: Smoothing = Smoothing(),
) -> CropPath:
    """A steady crop path from raw per-sample face centres (None where no face was seen)."""
    lo, hi = window / 2, 1 - window / 2
    seen = [i for i, c in enumerate(centres) if c is not None]
    if not seen or lo >= hi:
        return CropPath.centred()
    # Hold the last seen position through gaps (a turned head, a blink of the detector) rather than
    # swinging back to the centre and out again.
    raw = np.empty(len(centres))
    last = centres[seen[0]]
    for i, c in enumerate(centres):
        last = c if c is not None else last
        raw[i] = last
    k = max(1, smoothing.median) // 2
    padded = np.pad(raw, k, mode="edge")
    med = np.array([np.median(padded[i : i + 2 * k + 1]) for i in range(raw.size)])
    t = np.asarray(times, dtype=np.float64)
    out = np.empty_like(med)
    cur = float(np.clip(med[0], lo, hi))
    for i, target in enumerate(np.clip(med, lo, hi)):
        if abs(target - cur) >= smoothing.jump:
            cur = float(target)
        elif abs(target - cur) > smoothing.dead_zone:
            step = smoothing.alpha * (target - cur)
            limit = smoothing.max_speed * (t[i] - t[i - 1] if i else 0.0)
            cur += float(np.clip(step, -limit, limit))
        out[i] = cur
    return CropPath(t, np.clip(out, lo, hi))


def frontal_face_cascade() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face Haar cascade; DependencyUnavailable where this OpenCV build lacks it."""
    # OpenCV 5 dropped the Haar cascades from the main module; fail at start-up, not mid-job.
    data = getattr(cv2, "data", None)
    if not hasattr(cv2, "CascadeClassifier") or data is None:
        raise DependencyUnavailable("this OpenCV build has no Haar cascades (use opencv-python-headless 4.x)")
    cascade = cv2.CascadeClassifier(data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise DependencyUnavailable("the frontal-face Haar cascade could not be loaded")
    return cascade


@attrs.define
class HaarFaceTracker:
    """Face following with the frontal-face Haar cascade shipped in opencv-python(-headless) 4.x."""

    sample_fps: float = 2.0
    min_size: int = 24
    analysis_height: int = 240  # detection runs on frames scaled to this height; faces are big in talks
    smoothing: Smoothing = Smoothing()
    _cascade: cv2.CascadeClassifier = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._cascade = frontal_face_cascade()

    def track(self, source: Path, span: Span, window: float, rotation: int = 0) -> CropPath:
        times, detections, width = self._detect(source, span, rotation)
        return smooth_path(times, main_face_centres(detections, width), window, self.smoothing)

    def _detect(self, source: Path, span: Span, rotation: int) -> tuple[list[float], list[list[Box]], int]:
        times: list[float] = []
        detections: list[list[Box]] = []
        width = 1
        try:
            with av.open(str(source)) as container:
                stream = main_video(container)
                stream.thread_type = "AUTO"
                clock = timeline(container)
                clock.seek_before(container, stream, span.start)
                next_t = span.start
                for frame in PacketDecoder(source.name).frames(clock.demux(container, stream)):
                    t = frame.time
                    if t is None or t < next_t:
                        continue
                    if t > span.end:
                        break
                    gray = self._gray(frame)
                    if rotation:  # faces must be upright for the cascade
                        gray = np.ascontiguousarray(np.rot90(gray, -rotation // 90))
                    width = gray.shape[1]
                    found = self._cascade.detectMultiScale(
                        gray, scaleFactor=1.1, minNeighbors=4, minSize=(self.min_size, self.min_size)
                    )
                    times.append(t - span.start)
                    detections.append([(int(x), int(y), int(w), int(h)) for x, y, w, h in found])
                    next_t = t + 1 / self.sample_fps
        except (av.FFmpegError, IndexError) as exc:
            raise MediaError(f"cannot read video for face tracking: {exc}") from exc
        return times, detections, width

    def _gray(self, frame: av.VideoFrame) -> np.ndarray:
        scale = min(1.0, self.analysis_height / frame.height)
        w, h = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
        if frame.format.name in ("yuv420p", "yuvj420p", "nv12"):
            # The luma plane is the grey picture: no colour conversion needed.
            luma = frame.to_ndarray()[: frame.height, : frame.width]
            return cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA) if scale < 1 else luma
        return frame.to_ndarray(format="gray", width=w, height=h)
