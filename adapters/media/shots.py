"""Hard-cut detection on sampled frames, after PySceneDetect's ContentDetector (HSV deltas, optional edges).

Scores are computed pairwise as frames stream by, and cuts are picked afterwards from the whole score
sequence, so several decoders can each score one part of a file and their scores be joined.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import cv2
import numpy as np


@attrs.frozen
class ShotFrame:
    """What a later comparison needs from one sampled frame: its HSV planes and (maybe) its edges."""

    hsv: np.ndarray  # (h, w, 3) uint8, OpenCV hue scaled 0..179
    edges: np.ndarray | None


@attrs.frozen
class ContentScorer:
    """Scores how different a frame is from the one before, on a 0–255 scale (ContentDetector's)."""

    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0)  # hue, saturation, value, edges

    def prepare(self, rgb: np.ndarray) -> ShotFrame:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        edges = None
        if self.weights[3] > 0:
            value = hsv[:, :, 2]
            median = float(np.median(value))
            edges = cv2.Canny(value, int(max(0, 0.67 * median)), int(min(255, 1.33 * median)))
            edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
        return ShotFrame(hsv, edges)

    def score(self, previous: ShotFrame, current: ShotFrame) -> float:
        delta = cv2.absdiff(previous.hsv, current.hsv).reshape(-1, 3).mean(axis=0)
        h, s, v, e = self.weights
        parts = [h * float(delta[0]), s * float(delta[1]), v * float(delta[2])]
        if e > 0 and previous.edges is not None and current.edges is not None:
            parts.append(e * float(cv2.absdiff(previous.edges, current.edges).mean()))
        return sum(parts) / sum(w for w in self.weights if w > 0)


def pick_cuts(
    times: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float = 27.0,
    min_scene_seconds: float = 0.6,
) -> tuple[float, ...]:
    """Cut times: a sample whose score (vs the sample before) reaches ``threshold`` starts a new shot,
    unless the current shot is shorter than ``min_scene_seconds`` (flashes and fast pans)."""
    cuts: list[float] = []
    last = float(times[0]) if len(times) else 0.0
    for t, score in zip(times, scores, strict=True):
        if score >= threshold and float(t) - last >= min_scene_seconds:
            cuts.append(round(float(t), 3))
            last = float(t)
    return tuple(cuts)
