"""Damaged uploads: a few broken packets are skipped, as players do; a corrupt file fails with a reason."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.probe import MediaLimits
from adapters.media.renderer import PyAVClipRenderer
from adapters.media.synthetic import Truth, damage_packets
from domain.errors import MediaError
from domain.media import Clip, ClipOptions, Span


def test_a_few_damaged_packets_are_skipped(sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    source, truth = sample_video
    path = tmp_path / "scratched.mp4"
    assert damage_packets(source, path, every=200) >= 3
    analyzer = PyAVMediaAnalyzer(MediaLimits())
    analysis = analyzer.analyze(path, analyzer.probe(path))
    assert analysis.seconds == round(truth.duration)
    options = ClipOptions(min_seconds=2, max_seconds=10, caption_formats=())
    rendered = PyAVClipRenderer().render(path, analysis.info, Clip(Span(1.0, 9.0), 1.0, 1), options, tmp_path)
    with av.open(rendered.media_path) as container:
        assert sum(1 for _ in container.decode(video=0)) > 150


def test_a_corrupt_file_fails_with_a_reason(sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    source, _ = sample_video
    path = tmp_path / "shredded.mp4"
    damage_packets(source, path, every=3)
    analyzer = PyAVMediaAnalyzer(MediaLimits())
    with pytest.raises(MediaError, match="corrupt media"):
        analyzer.analyze(path, analyzer.probe(path))
