import numpy as np
import pytest
import torch

from adapters.torch.highlight_net import FEATURE_NAMES, PRIOR_WEIGHTS, HighlightNet
from domain.media import MEDIA_FEATURES, TEXT_FEATURES, ClipOptions, Span, Transcript
from domain.selection import select_clips

QUIET = {
    "brightness": 0.4,
    "colourfulness": 0.1,
    "motion": 0.01,
    "shot_change": 0.0,
    "loudness": -40.0,
    "loudness_delta": 0.5,
    "speech_prob": 0.6,
    "speaking_rate": 2.0,
    "pause": 0.4,
    "sentence_end": 0.0,
}
LIVELY = {"loudness": -12.0, "loudness_delta": 9.0, "motion": 0.2, "colourfulness": 0.5}


def features(seconds: int, **overrides: float) -> torch.Tensor:
    row = torch.tensor([overrides.get(f, QUIET[f]) for f in FEATURE_NAMES])
    return row.repeat(1, seconds, 1)


def test_feature_order_is_media_then_text() -> None:
    assert FEATURE_NAMES == MEDIA_FEATURES + TEXT_FEATURES
    assert set(PRIOR_WEIGHTS) == set(FEATURE_NAMES)


def test_untrained_model_is_exactly_the_prior() -> None:
    model = HighlightNet()
    x = torch.randn(3, 50, len(FEATURE_NAMES)) * 4
    assert torch.equal(model(x), model.prior(model.normalise(x)))


def test_a_trained_residual_moves_the_output_off_the_prior() -> None:
    model = HighlightNet()
    last = model.residual[-1]
    assert isinstance(last, torch.nn.Conv1d)
    torch.nn.init.normal_(last.weight)
    x = torch.randn(1, 50, len(FEATURE_NAMES))
    assert not torch.allclose(model(x), model.prior(model.normalise(x)))


def test_gradients_reach_the_residual_and_never_the_prior() -> None:
    model = HighlightNet()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 40, len(FEATURE_NAMES))
    for _ in range(2):  # the zero last layer blocks earlier layers' gradients until it has moved once
        optimiser.zero_grad()
        (model(x) - torch.randn(2, 40)).pow(2).mean().backward()
        optimiser.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.residual.parameters())
    assert not any(b.requires_grad for b in model.buffers())


@pytest.mark.parametrize("seconds", [1, 2, 3, 8, 301])
def test_any_length_gives_one_float32_score_per_second(seconds: int) -> None:
    x = torch.randn(2, seconds, len(FEATURE_NAMES), dtype=torch.float64)
    with torch.inference_mode():
        y = HighlightNet()(x)
    assert y.shape == (2, seconds)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_wrong_feature_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="features"):
        HighlightNet()(torch.zeros(1, 5, len(FEATURE_NAMES) - 1))


def test_missing_readings_and_digital_silence_stay_finite() -> None:
    x = features(20)
    x[0, :5, FEATURE_NAMES.index("brightness")] = float("nan")
    x[0, 5:9, FEATURE_NAMES.index("loudness")] = float("-inf")
    assert torch.isfinite(HighlightNet()(x)).all()


def test_overall_level_does_not_change_scores() -> None:
    x = features(30)
    loud = FEATURE_NAMES.index("loudness")
    x[0, :, loud] += torch.linspace(-5, 5, 30)
    louder = x.clone()
    louder[0, :, loud] += 6.0  # the same recording, 6 dB hotter
    model = HighlightNet()
    assert torch.allclose(model(x), model(louder), atol=1e-5)


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_each_feature_pushes_the_score_the_way_the_prior_says(name: str) -> None:
    x = features(21)
    i = FEATURE_NAMES.index(name)
    x[0, 10, i] += 0.5 * HighlightNet().spread[i]  # half a typical spread, well inside the clamp
    change = HighlightNet()(x)[0, 10] - HighlightNet()(features(21))[0, 10]
    assert torch.sign(change).item() == np.sign(PRIOR_WEIGHTS[name])


def test_default_model_ranks_a_loud_lively_segment_first() -> None:
    seconds = 240
    x = features(seconds)
    for name, value in LIVELY.items():
        x[0, 150:170, FEATURE_NAMES.index(name)] = value
    # Some gentle variation elsewhere so the quiet parts are not all identical.
    x[0, :, FEATURE_NAMES.index("loudness")] += torch.sin(torch.arange(seconds) / 7.0)
    with torch.inference_mode():
        scores = HighlightNet()(x)[0].numpy()
    assert scores[150:170].mean() > scores[:140].max()
    clips = select_clips(
        scores, Transcript(), options=ClipOptions(min_seconds=10, max_seconds=30, max_clips=3)
    )
    assert clips[0].span.overlaps(Span(150, 170))
