"""The crop path's choice of face and its smoothing: pure functions, no media."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from adapters.media.faces import CropPath, Smoothing, main_face_centres, smooth_path

WIDTH = 640
WINDOW = 0.32  # a 9:16 crop of a 16:9 frame


def _times(n: int, fps: float = 2.0) -> list[float]:
    return [i / fps for i in range(n)]


def test_no_face_gives_a_centred_path() -> None:
    path = smooth_path(_times(10), [None] * 10, WINDOW)
    assert [path.at(t) for t in (0.0, 2.0, 4.5)] == [0.5, 0.5, 0.5]


def test_steady_face_is_followed_from_the_first_frame() -> None:
    path = smooth_path(_times(10), [0.3] * 10, WINDOW)
    assert np.allclose(path.centres, 0.3)


def test_jittery_detections_give_a_steady_path() -> None:
    rng = np.random.default_rng(1)
    raw = list(0.3 + rng.normal(0, 0.02, 40))
    raw[7], raw[21] = 0.9, 0.05  # single-sample misdetections
    path = smooth_path(_times(40), raw, WINDOW)
    assert np.ptp(path.centres) < 0.05
    assert np.max(np.abs(np.diff(path.centres))) < np.max(np.abs(np.diff(raw))) / 5


def test_a_move_is_followed_at_a_bounded_speed() -> None:
    smoothing = Smoothing()
    raw = [0.3] * 10 + [0.55] * 30
    times = _times(40)
    path = smooth_path(times, raw, WINDOW, smoothing)
    speeds = np.abs(np.diff(path.centres)) / np.diff(times)
    assert speeds.max() <= smoothing.max_speed + 1e-9
    assert abs(path.centres[-1] - 0.55) <= smoothing.dead_zone + 1e-9
    assert path.centres[9] == 0.3 and path.centres[10] < 0.55


def test_a_cut_to_a_far_face_is_followed_at_once() -> None:
    raw = [0.25] * 10 + [0.75] * 10
    path = smooth_path(_times(20), raw, WINDOW)
    assert path.centres[9] == 0.25 and path.centres[10] == 0.75


def test_gaps_hold_the_last_seen_position() -> None:
    path = smooth_path(
        _times(12), [None, None, 0.3, 0.3, None, None, None, 0.3, 0.3, None, None, None], WINDOW
    )
    assert np.allclose(path.centres, 0.3)


@given(
    st.lists(st.one_of(st.none(), st.floats(-0.5, 1.5)), min_size=1, max_size=60),
    st.floats(0.05, 1.0),
)
def test_path_stays_inside_the_frame(raw: list[float | None], window: float) -> None:
    path = smooth_path(_times(len(raw)), raw, window)
    assert np.all(path.centres >= window / 2 - 1e-9)
    assert np.all(path.centres <= 1 - window / 2 + 1e-9)


def test_main_face_is_the_large_persistent_one() -> None:
    speaker = (180, 100, 120, 120)  # centre x = 240
    passer_by = (500, 120, 60, 60)
    big_once = (20, 20, 200, 200)  # a one-frame false positive, larger than the speaker
    detections = [[speaker], [passer_by, speaker], [big_once, speaker], [], [speaker, passer_by]]
    centres = main_face_centres(detections, WIDTH)
    assert centres == [240 / WIDTH, 240 / WIDTH, 240 / WIDTH, None, 240 / WIDTH]


def test_crop_path_interpolates_between_samples() -> None:
    path = CropPath(np.array([0.0, 1.0]), np.array([0.2, 0.4]))
    assert abs(path.at(0.5) - 0.3) < 1e-12
    assert path.at(-1.0) == 0.2 and path.at(5.0) == 0.4
