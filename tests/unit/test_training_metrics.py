import json
import math

import numpy as np
import pytest
from scipy import stats

from domain.errors import InvalidInput, InvalidOptions
from domain.media import Span
from domain.training import (
    FEATURE_COLUMNS,
    EpochRecord,
    Evaluation,
    LabelledVideo,
    TrainingResult,
    TrainingSettings,
    VideoMetrics,
    clip_f1,
    evaluate,
    highlight_spans,
    kendall_tau,
    random_baseline,
    spearman_rho,
    split_by_video,
)


def video(video_id: str, targets: list[float] | np.ndarray, seed: int = 0) -> LabelledVideo:
    targets = np.asarray(targets, dtype=np.float32)
    features = np.random.default_rng(seed).random((targets.size, len(FEATURE_COLUMNS)))
    return LabelledVideo(video_id, features, targets, np.ones(targets.size))


def test_rank_correlations_are_scipys_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.random(200), (rng.random(200) > 0.7).astype(float)
    assert kendall_tau(scores, labels) == pytest.approx(stats.kendalltau(scores, labels).statistic)
    assert spearman_rho(scores, labels) == pytest.approx(stats.spearmanr(scores, labels).statistic)
    assert kendall_tau([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(math.sqrt(2 / 3))
    assert kendall_tau([4, 3, 2, 1], [1, 2, 3, 4]) == -1.0
    assert spearman_rho([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0


@pytest.mark.parametrize("metric", [kendall_tau, spearman_rho])
def test_rank_correlations_are_finite_when_nothing_varies(metric) -> None:
    assert metric(np.ones(10), np.arange(10)) == 0.0
    assert metric(np.arange(10), np.zeros(10)) == 0.0
    assert metric([1.0], [1.0]) == 0.0
    with pytest.raises(InvalidInput):
        metric(np.arange(3), np.arange(4))
    with pytest.raises(InvalidInput):
        metric([0.0, float("nan"), 1.0], [0, 1, 2])


def test_clip_f1_counts_seconds_once() -> None:
    assert clip_f1([Span(0, 10)], [Span(5, 15)]) == pytest.approx(0.5)
    assert clip_f1([Span(0, 10), Span(5, 10)], [Span(0, 10)]) == pytest.approx(1.0)  # overlap counted once
    assert clip_f1([Span(0, 10)], [Span(0, 5), Span(20, 25)]) == pytest.approx(2 * 0.5 * 0.5)
    assert clip_f1([Span(0, 10)], [Span(10, 20)]) == 0.0
    assert clip_f1([], [Span(0, 1)]) == 0.0 and clip_f1([Span(0, 1)], []) == 0.0


def test_highlight_spans_are_runs_of_labelled_seconds() -> None:
    assert highlight_spans(np.array([0, 1, 1, 0, 0.6])) == (Span(1, 3), Span(4, 5))
    assert highlight_spans(np.zeros(5)) == ()


def test_evaluation_averages_over_videos_that_say_something() -> None:
    informative = VideoMetrics(0.4, 0.5, 0.6, ranked=True, has_highlight=True)
    flat = VideoMetrics(0.0, 0.0, 0.0, ranked=False, has_highlight=False)
    result = Evaluation.of([informative, flat, VideoMetrics(0.2, 0.3, 0.0, ranked=True, has_highlight=True)])
    assert (result.kendall_tau, result.spearman_rho, result.clip_f1) == pytest.approx((0.3, 0.4, 0.3))
    assert result.videos == 3
    assert Evaluation.of([flat]).to_dict() == Evaluation(videos=1).to_dict()


def test_scores_that_follow_the_labels_beat_random_ones() -> None:
    videos = [video(f"v{i}", (np.arange(120) % 40 < 10).astype(float), seed=i) for i in range(6)]
    perfect = evaluate([v.targets for v in videos], videos)
    chance = random_baseline(videos, seed=0)
    assert perfect.kendall_tau == perfect.spearman_rho == 1.0
    assert abs(chance.kendall_tau) < 0.1 and chance.clip_f1 < perfect.clip_f1
    assert random_baseline(videos, seed=0) == chance
    json.dumps(chance.to_dict(), allow_nan=False)


def test_split_by_video_is_disjoint_complete_seeded_and_order_free() -> None:
    videos = [video(f"v{i}", [0, 1]) for i in range(10)]
    split = split_by_video(videos, 0.3, seed=4)
    assert len(split.validation) == 3 and len(split.train) == 7
    assert not set(split.train_ids) & set(split.validation_ids)
    assert set(split.train_ids) | set(split.validation_ids) == {v.video_id for v in videos}
    assert split_by_video(videos[::-1], 0.3, seed=4) == split
    assert split_by_video(videos, 0.3, seed=5).validation_ids != split.validation_ids
    assert len(split_by_video(videos[:2], 0.01, seed=0).validation) == 1
    with pytest.raises(InvalidInput):
        split_by_video(videos[:1], 0.5, seed=0)


def test_labelled_videos_refuse_bad_shapes_and_labels() -> None:
    features = np.zeros((3, len(FEATURE_COLUMNS)))
    with pytest.raises(InvalidInput, match="features"):
        LabelledVideo("v", np.zeros((3, 4)), np.zeros(3), np.ones(3))
    with pytest.raises(InvalidInput, match="one value per second"):
        LabelledVideo("v", features, np.zeros(2), np.ones(3))
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        LabelledVideo("v", features, np.array([0, 2, 0]), np.ones(3))
    with pytest.raises(InvalidInput, match="weights"):
        LabelledVideo("v", features, np.zeros(3), -np.ones(3))


def test_settings_validate_and_round_trip() -> None:
    settings = TrainingSettings(epochs=3, precision="bf16", version="v7")
    assert TrainingSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(InvalidOptions, match="precision"):
        TrainingSettings(precision="fp8")
    with pytest.raises(InvalidOptions, match="epochs"):
        TrainingSettings(epochs=0)
    with pytest.raises(InvalidOptions, match="kernel"):
        TrainingSettings(kernel=4)


def test_results_round_trip_through_json(tmp_path) -> None:
    result = TrainingResult(
        version="v7",
        artifact=tmp_path / "v7.safetensors",
        card=tmp_path / "v7.json",
        metrics=Evaluation(0.4, 0.5, 0.3, 2, 300),
        initial_metrics=Evaluation(0.1, 0.1, 0.2, 2, 300),
        epochs_run=3,
        best_epoch=2,
        samples_per_second=1234.5,
        primary=True,
        train_ids=["a", "b"],
        validation_ids=["c"],
        history=[EpochRecord(1, 0.7, 0.3, 1e-3, 1000.0)],
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert TrainingResult.from_dict(json.loads(text)) == result
