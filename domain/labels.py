"""Per-second training labels: from users' ratings of clips, and from TVSum-style annotation files.

Ratings: a rated clip labels its seconds with its mean rating mapped from [-1, 1] to [0, 1], at full
weight; the unrated seconds of a rated video are weak negatives (target 0, ``WEAK_NEGATIVE_WEIGHT``): people
rated what the model offered, so what it did not offer is probably, not certainly, worse.

TVSum (``ydata-tvsum50-anno.tsv``): one line per annotator and video — video id, category, comma-separated
per-frame importance scores (1–5). Scores are averaged over annotators, then over each second's frames,
and scaled to [0, 1] per video; every second counts fully.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

from domain.errors import InvalidInput
from domain.jobs import RatedSpan

WEAK_NEGATIVE_WEIGHT = 0.25


def labels_from_ratings(seconds: int, spans: Sequence[RatedSpan]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, weights), one per second. Overlapping clips average their ratings, weighted by count."""
    total = np.zeros(seconds, dtype=np.float64)
    count = np.zeros(seconds, dtype=np.float64)
    for span in spans:
        first, last = max(0, math.floor(span.start)), min(seconds, math.ceil(span.end))
        if last <= first:
            continue
        total[first:last] += (span.rating + 1.0) / 2.0 * span.ratings
        count[first:last] += span.ratings
    rated = count > 0
    targets = np.where(rated, total / np.maximum(count, 1.0), 0.0).astype(np.float32)
    weights = np.where(rated, 1.0, WEAK_NEGATIVE_WEIGHT).astype(np.float32)
    return targets, weights


@attrs.frozen(eq=False)
class Annotation:
    video_id: str
    category: str
    frame_scores: np.ndarray  # per frame, averaged over annotators
    annotators: int


def parse_tvsum(text: str) -> dict[str, Annotation]:
    """Annotations by video id. A malformed line is InvalidInput naming its line number."""
    rows: dict[str, list[np.ndarray]] = {}
    categories: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            raise InvalidInput(f"line {number}: want 3 tab-separated fields (video, category, scores)")
        video_id, category, scores_text = (p.strip() for p in parts)
        try:
            scores = np.array([float(v) for v in scores_text.split(",") if v.strip()], dtype=np.float64)
        except ValueError:
            raise InvalidInput(f"line {number}: scores must be comma-separated numbers") from None
        if not video_id or scores.size == 0 or not np.isfinite(scores).all():
            raise InvalidInput(f"line {number}: a video id and finite scores are required")
        previous = rows.setdefault(video_id, [])
        if previous and previous[0].size != scores.size:
            raise InvalidInput(
                f"line {number}: {video_id} has {scores.size} frames, earlier lines had {previous[0].size}"
            )
        previous.append(scores)
        categories[video_id] = category
    return {
        vid: Annotation(vid, categories[vid], np.mean(np.stack(scores), axis=0), len(scores))
        for vid, scores in rows.items()
    }


def labels_from_frames(frame_scores: np.ndarray, fps: float, seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """(targets, weights): each second's mean frame score, scaled to [0, 1] over the video."""
    if fps <= 0 or not math.isfinite(fps):
        raise InvalidInput(f"a frame rate is needed to place frame scores in time (got {fps})")
    second_of_frame = np.floor(np.arange(frame_scores.size) / fps).astype(np.int64)
    inside = second_of_frame < seconds
    sums = np.bincount(second_of_frame[inside], weights=frame_scores[inside], minlength=seconds)
    counts = np.bincount(second_of_frame[inside], minlength=seconds)
    per_second = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    # A second no frame reaches (the annotation is shorter than the analysis) takes the last known value.
    known = np.flatnonzero(~np.isnan(per_second))
    if known.size == 0:
        return np.zeros(seconds, dtype=np.float32), np.zeros(seconds, dtype=np.float32)
    per_second = np.interp(np.arange(seconds), known, per_second[known])
    low, high = float(per_second.min()), float(per_second.max())
    targets = (per_second - low) / (high - low) if high > low else np.zeros(seconds)
    weights = np.where(counts > 0, 1.0, 0.0)
    return targets.astype(np.float32), weights.astype(np.float32)
