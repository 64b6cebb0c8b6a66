"""The engine's parts together on generated media with known truth: real PyAV analysis, torch scoring and
selection. The loud, lively moment must come out on top under the default (prior) model."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.probe import MediaLimits
from adapters.media.synthetic import Scene, Truth, write_video
from adapters.speech.vad import SileroVad
from adapters.torch.model_manager import ModelManager
from adapters.torch.video_model import TorchVideoModel
from domain.media import ClipOptions, Span, Transcript
from domain.selection import select_clips

QUIET = (60, 70, 80)
SCENES = (
    Scene(8.0, QUIET),
    Scene(8.0, (70, 60, 90)),
    Scene(8.0, (220, 120, 30), motion=0.9, loud=True),
    Scene(8.0, (60, 80, 70)),
    Scene(8.0, (80, 70, 60)),
)


@pytest.fixture(scope="module")
def lively(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("engine") / "lively.mp4"
    return path, write_video(path, SCENES, size=(320, 180))


def test_loud_lively_moment_ranks_first_under_the_default_model(lively, tmp_path: Path) -> None:
    path, truth = lively
    analyzer = PyAVMediaAnalyzer(MediaLimits(), vad=SileroVad())
    analysis = analyzer.analyze(path, analyzer.probe(path))
    model = TorchVideoModel(ModelManager(tmp_path))
    scores = model.score(analysis, Transcript())
    assert scores.shape == (analysis.seconds,)

    clips = select_clips(
        scores,
        Transcript(),
        options=ClipOptions(min_seconds=4, max_seconds=8, max_clips=4),
        duration=analysis.info.duration,
        shot_cuts=analysis.shot_cuts,
        speech=analysis.speech,
    )
    loud = truth.loud[0]
    assert clips, "a 40 s video must give clips of 4-8 s"
    best = clips[0]
    assert best.span.overlaps(loud)
    overlap = min(best.span.end, loud.end) - max(best.span.start, loud.start)
    assert overlap >= 0.5 * best.span.duration
    quiet_scores = [c.score for c in clips[1:] if not c.span.overlaps(Span(loud.start, loud.end))]
    assert all(best.score > s for s in quiet_scores)
