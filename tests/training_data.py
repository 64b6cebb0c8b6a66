"""Generated labelled videos whose highlights the prior alone ranks poorly.

A highlight is a stretch of strong motion in a quiet room (someone demonstrating, a silent gag). Each video
also holds loud action (strong motion, loud: the prior's favourite, not a highlight here) and quiet stills.
Telling the first apart takes both features together: the prior adds motion to loudness and so ranks loud
action first and the highlights near the background, which a trained residual has to correct.
"""

from __future__ import annotations

import numpy as np

from domain.training import FEATURE_COLUMNS, LabelledVideo, TrainingSet

_COLUMN = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
# (motion, loudness dBFS) of each kind of stretch; the background is (0.04, -30).
_STRETCHES = {"highlight": (0.15, -42.0), "loud_action": (0.15, -18.0), "quiet_still": (0.02, -42.0)}


def _background(seconds: int, rng: np.random.Generator) -> np.ndarray:
    x = np.empty((seconds, len(FEATURE_COLUMNS)), dtype=np.float32)
    x[:, _COLUMN["brightness"]] = rng.uniform(0.3, 0.7, seconds)
    x[:, _COLUMN["colourfulness"]] = rng.uniform(0.1, 0.5, seconds)
    x[:, _COLUMN["motion"]] = np.clip(rng.normal(0.04, 0.015, seconds), 0, None)
    x[:, _COLUMN["shot_change"]] = rng.random(seconds) < 0.05
    x[:, _COLUMN["loudness"]] = rng.normal(-30, 3, seconds)
    x[:, _COLUMN["loudness_delta"]] = np.abs(rng.normal(0, 2, seconds))
    x[:, _COLUMN["speech_prob"]] = rng.uniform(0.3, 0.9, seconds)
    x[:, _COLUMN["speaking_rate"]] = rng.normal(2.5, 0.5, seconds)
    x[:, _COLUMN["pause"]] = rng.uniform(0, 0.6, seconds)
    x[:, _COLUMN["sentence_end"]] = rng.random(seconds) < 0.2
    return x


def labelled_video(video_id: str, seconds: int, rng: np.random.Generator) -> LabelledVideo:
    x = _background(seconds, rng)
    targets = np.zeros(seconds, dtype=np.float32)
    start = int(rng.integers(3, 12))
    while start < seconds - 6:
        length = int(rng.integers(6, 15))
        kind = str(rng.choice(list(_STRETCHES)))
        motion, loudness = _STRETCHES[kind]
        stretch = slice(start, min(seconds, start + length))
        n = stretch.stop - stretch.start
        x[stretch, _COLUMN["motion"]] = rng.normal(motion, 0.02, n).clip(0, None)
        x[stretch, _COLUMN["loudness"]] = rng.normal(loudness, 2, n)
        targets[stretch] = kind == "highlight"
        start = stretch.stop + int(rng.integers(5, 20))
    return LabelledVideo(video_id, x, targets, np.ones(seconds, dtype=np.float32))


def training_set(videos: int, seconds: int = 120, seed: int = 0) -> TrainingSet:
    """``videos`` videos of ``seconds`` to ``1.5 × seconds`` seconds each."""
    rng = np.random.default_rng(seed)
    return TrainingSet(
        labelled_video(f"v{i:03d}", int(rng.integers(seconds, seconds * 3 // 2 + 1)), rng)
        for i in range(videos)
    )
