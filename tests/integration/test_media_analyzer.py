"""PyAVMediaAnalyzer and SileroVad on generated media whose cuts, loud moments and speech are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.synthetic import Scene, Truth, speak, write_video
from adapters.speech.vad import SileroVad, speech_segments
from domain.media import MEDIA_FEATURES, Analysis, Span
from domain.ports import MediaAnalyzer

COLOURS = [(20, 30, 90), (230, 220, 60), (40, 160, 60), (150, 40, 150), (200, 80, 40), (90, 170, 200)]


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def analyzer(vad: SileroVad) -> PyAVMediaAnalyzer:
    return PyAVMediaAnalyzer(vad=vad)


@pytest.fixture(scope="module")
def analysed(
    analyzer: PyAVMediaAnalyzer, sample_video: tuple[Path, Truth]
) -> tuple[Analysis, Truth, list[float]]:
    path, truth = sample_video
    reported: list[float] = []
    return analyzer.analyze(path, analyzer.probe(path), reported.append), truth, reported


@pytest.fixture(scope="module")
def many_cuts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """60 s of 2–6 s shots, some moving, variable frame rate, small frames (cheap to make and decode)."""
    rng = np.random.default_rng(11)
    scenes: list[Scene] = []
    colour = 0
    while sum(s.seconds for s in scenes) < 60:
        colour = (colour + int(rng.integers(1, len(COLOURS)))) % len(COLOURS)
        scenes.append(
            Scene(float(rng.integers(2, 7)), COLOURS[colour], motion=float(rng.choice([0, 0.3, 0.8])))
        )
    path = tmp_path_factory.mktemp("cuts") / "cuts.mp4"
    return path, write_video(path, scenes, size=(320, 180), vfr=True, audio=False, gop=50)


def f1(found: tuple[float, ...], truth: tuple[float, ...], tolerance: float = 0.5) -> float:
    unmatched = list(truth)
    hits = 0
    for t in found:
        near = [c for c in unmatched if abs(c - t) <= tolerance]
        if near:
            unmatched.remove(near[0])
            hits += 1
    if not found or not truth:
        return float(found == truth)
    precision, recall = hits / len(found), hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def _rows(analysis: Analysis, span: Span, column: str) -> np.ndarray:
    return analysis.column(column)[int(span.start) : int(np.ceil(span.end))]


def test_one_row_per_second_in_the_documented_columns(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    port: MediaAnalyzer = PyAVMediaAnalyzer()  # mypy checks the adapter against the port here
    assert "silero" not in port.version
    analysis, truth, _ = analysed
    assert analysis.columns == MEDIA_FEATURES
    assert analysis.features.shape == (round(truth.duration), len(MEDIA_FEATURES))
    assert analysis.features.dtype == np.float32
    assert np.isfinite(analysis.features).all()
    assert ((analysis.column("brightness") >= 0) & (analysis.column("brightness") <= 1)).all()


def test_cuts_of_the_sample_are_found(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    analysis, truth, _ = analysed
    assert f1(analysis.shot_cuts, truth.cuts) >= 0.9
    assert analysis.column("shot_change").sum() == len(analysis.shot_cuts)


def test_cuts_in_variable_frame_rate_video_land_on_the_right_seconds(
    analyzer: PyAVMediaAnalyzer, many_cuts: tuple[Path, Truth]
) -> None:
    path, truth = many_cuts
    analysis = analyzer.analyze(path, analyzer.probe(path))
    assert len(truth.cuts) >= 10
    assert f1(analysis.shot_cuts, truth.cuts) >= 0.9
    assert analysis.seconds == round(truth.duration)
    assert (analysis.column("loudness") == analysis.column("loudness").min()).all()  # no audio: silence
    assert analysis.speech == ()


# At 3 samples a second a third of the file's length falls between grid points: parts must still meet.
@pytest.mark.parametrize("sample_fps", [3.0, 4.0])
def test_parallel_decoders_join_into_the_same_answer(
    many_cuts: tuple[Path, Truth], sample_fps: float
) -> None:
    path, _ = many_cuts
    one = PyAVMediaAnalyzer(decoders=1, sample_fps=sample_fps)
    three = PyAVMediaAnalyzer(decoders=3, min_part_seconds=5, sample_fps=sample_fps)
    a, b = one.analyze(path, one.probe(path)), three.analyze(path, three.probe(path))
    assert a.shot_cuts == b.shot_cuts
    np.testing.assert_allclose(a.features, b.features, atol=1e-3)


def test_moving_scenes_have_more_motion(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    analysis, truth, _ = analysed
    still, busy = truth.scenes[0], truth.scenes[1]  # the sample's second scene moves the most
    assert _rows(analysis, busy, "motion")[1:].mean() > 5 * _rows(analysis, still, "motion")[1:].mean() + 0.01


def test_the_loud_scene_is_louder(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    analysis, truth, _ = analysed
    (loud,) = truth.loud
    quiet = [s for s in truth.scenes if s != loud]
    assert (
        _rows(analysis, loud, "loudness").mean()
        > max(_rows(analysis, s, "loudness").mean() for s in quiet) + 3
    )
    boundary = int(loud.start)
    assert analysis.column("loudness_delta")[boundary] > 10


def test_speech_is_found_where_it_was_spoken(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    analysis, truth, _ = analysed
    assert truth.speech_spans
    for spoken in truth.speech_spans:
        assert _rows(analysis, spoken, "speech_prob").mean() > 0.5
        assert any(found.overlaps(spoken) for found in analysis.speech)
    silent = [s for s in truth.scenes if not any(s.overlaps(x) for x in truth.speech_spans)]
    for scene in silent:
        assert _rows(analysis, scene, "speech_prob").mean() < 0.2
    in_speech = sum(
        min(f.end, s.end) - max(f.start, s.start)
        for f in analysis.speech
        for s in truth.speech_spans
        if f.overlaps(s)
    )
    assert in_speech / sum(f.duration for f in analysis.speech) > 0.9  # found speech is real speech


def test_progress_rises_to_one(analysed: tuple[Analysis, Truth, list[float]]) -> None:
    _, _, reported = analysed
    assert reported and reported[-1] == 1.0
    assert all(0 <= p <= 1 for p in reported)


def test_vad_fed_in_blocks_matches_one_call(vad: SileroVad) -> None:
    audio = np.concatenate([np.zeros(8000, np.float32), speak("Testing one two three, block by block.")])
    vad.reset()
    whole = vad.probabilities(audio)
    vad.reset()
    parts = np.concatenate([vad.probabilities(audio[i : i + 5000]) for i in range(0, audio.size, 5000)])
    assert whole.size == parts.size == audio.size // 512
    assert np.abs(whole - parts).mean() < 0.05
    assert whole.max() > 0.8 and whole[:10].max() < 0.3


def test_speech_segments_bridge_short_pauses_and_drop_blips() -> None:
    window = 0.032
    probs = np.zeros(200, np.float32)
    probs[20:60] = 0.9  # 1.28 s of speech
    probs[65:100] = 0.9  # after a 0.16 s pause: same segment
    probs[150:153] = 0.9  # a 0.1 s blip: dropped
    (segment,) = speech_segments(probs)
    assert segment.start == pytest.approx(20 * window, abs=1e-3)
    assert segment.end == pytest.approx(100 * window, abs=1e-3)
    assert len(speech_segments(probs, min_silence=0.1)) == 2
