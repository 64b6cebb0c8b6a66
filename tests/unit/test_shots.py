"""The content-change scorer and cut picker on synthetic frame arrays with known cuts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adapters.media.shots import ContentScorer, pick_cuts

FPS = 4.0


def _clip(
    colours: list[tuple[int, int, int]], samples_each: int, *, moving: bool = False
) -> list[np.ndarray]:
    """Frames of solid-colour shots with a little noise; ``moving`` adds a square that slides every frame."""
    rng = np.random.default_rng(3)
    frames = []
    for colour in colours:
        for i in range(samples_each):
            frame = np.empty((90, 160, 3), np.uint8)
            frame[:] = colour
            frame = np.clip(frame + rng.integers(-4, 5, frame.shape), 0, 255).astype(np.uint8)
            if moving:
                x = (i * 12) % 130
                frame[30:60, x : x + 30] = 255
            frames.append(frame)
    return frames


def _scores(scorer: ContentScorer, frames: list[np.ndarray]) -> np.ndarray:
    prepared = [scorer.prepare(f) for f in frames]
    return np.array([0.0] + [scorer.score(a, b) for a, b in itertools.pairwise(prepared)])


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 0.0), (1.0, 1.0, 1.0, 1.0)])
def test_hard_cuts_are_found_at_the_first_sample_of_each_new_shot(
    weights: tuple[float, float, float, float],
) -> None:
    frames = _clip([(20, 30, 90), (230, 220, 60), (40, 160, 60), (120, 40, 130)], samples_each=12)
    times = np.arange(len(frames)) / FPS
    cuts = pick_cuts(times, _scores(ContentScorer(weights), frames))
    assert cuts == (3.0, 6.0, 9.0)


def test_a_moving_object_within_a_shot_is_not_a_cut() -> None:
    frames = _clip([(40, 60, 120)], samples_each=40, moving=True)
    scores = _scores(ContentScorer(), frames)
    assert 0 < scores.max() < 27
    assert pick_cuts(np.arange(len(frames)) / FPS, scores) == ()


def test_same_shot_scores_low_and_a_change_scores_high() -> None:
    scorer = ContentScorer()
    a, b, c = _clip([(120, 120, 40)], 2)[0], _clip([(120, 120, 40)], 2)[1], _clip([(20, 40, 160)], 1)[0]
    same, change = (
        scorer.score(scorer.prepare(a), scorer.prepare(b)),
        scorer.score(scorer.prepare(a), scorer.prepare(c)),
    )
    assert same < 5 < 27 < change


def test_cuts_closer_than_the_minimum_shot_length_are_merged() -> None:
    times = np.arange(8) / FPS
    scores = np.array([0, 0, 0, 50, 60, 0, 0, 50])
    assert pick_cuts(times, scores, min_scene_seconds=0.6) == (0.75, 1.75)
    assert pick_cuts(times, scores, min_scene_seconds=0.2) == (0.75, 1.0, 1.75)
    assert pick_cuts(times, scores, min_scene_seconds=1.5) == (1.75,)  # the first shot is too short too


def test_threshold_decides() -> None:
    times, scores = np.arange(8) / FPS, np.array([0, 0, 0, 26.9, 0, 0, 0, 27.0])
    assert pick_cuts(times, scores) == (1.75,)
    assert pick_cuts(times, scores, threshold=20) == (0.75, 1.75)
    assert pick_cuts([], []) == ()
