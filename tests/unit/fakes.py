"""Fakes for the media and model ports: they satisfy the same Protocols, do no I/O, and count calls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from adapters.memory.cache import MemoryCache
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from application.job_attempt import JobRunPolicy
from domain.errors import MediaError
from domain.media import (
    MEDIA_FEATURES,
    Analysis,
    Clip,
    ClipOptions,
    MediaInfo,
    RenderedClip,
    Span,
    Transcript,
    Word,
)
from domain.ports import FetchedMedia, Progress, no_progress
from domain.retry import RetryPolicy

INFO = MediaInfo(
    duration=120.0, width=640, height=360, fps=25.0, video_codec="h264", audio_codec="aac", has_audio=True
)


@attrs.define
class FakeFetcher:
    files: dict[str, str] = attrs.field(factory=dict)  # source -> sha256

    async def fetch(self, source: str) -> FetchedMedia:
        if source not in self.files:
            raise MediaError(f"{source}: no such file")
        return FetchedMedia(path=Path(source), sha256=self.files[source], size_bytes=1000)


@attrs.define
class FakeAnalyzer:
    version: str = "fake-analyzer/1"
    calls: int = 0
    broken: set[str] = attrs.field(factory=set)

    def probe(self, path: Path) -> MediaInfo:
        if str(path) in self.broken:
            raise MediaError(f"{path}: the file is truncated")
        return INFO

    def analyze(self, path: Path, info: MediaInfo, progress: Progress = no_progress) -> Analysis:
        self.calls += 1
        seconds = int(info.duration)
        features = np.zeros((seconds, len(MEDIA_FEATURES)), dtype=np.float32)
        features[60:90, MEDIA_FEATURES.index("loudness")] = 1.0
        progress(1.0)
        return Analysis(info, MEDIA_FEATURES, features, shot_cuts=(30.0, 60.0, 90.0), speech=(Span(0, 120),))


@attrs.define
class FakeTranscriber:
    version: str = "fake-asr/1"
    calls: int = 0

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        self.calls += 1
        words = tuple(Word(f"word{i}", i * 2.0 + 0.2, i * 2.0 + 0.8) for i in range(60))
        return Transcript(words)


@attrs.define
class FakeModel:
    version: str = "fake-model/1"

    def score(self, analysis: Analysis, transcript: Transcript) -> np.ndarray:
        return analysis.column("loudness").astype(np.float32)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        return features[:, MEDIA_FEATURES.index("loudness")].astype(np.float32)

    def using(self, version: str | None) -> FakeModel:
        return attrs.evolve(self, version=version or "fake-model/1")


@attrs.define
class FakeRenderer:
    version: str = "fake-renderer/1"
    rendered: list[Clip] = attrs.field(factory=list)

    def render(
        self,
        source: Path,
        info: MediaInfo,
        clip: Clip,
        options: ClipOptions,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> RenderedClip:
        self.rendered.append(clip)
        progress(1.0)
        return RenderedClip(clip, str(out_dir / f"clip_{clip.rank:02d}.mp4"))


@attrs.frozen
class FakeStore:
    root: Path

    def clip_dir(self, job_id: str) -> Path:
        return self.root / job_id


@attrs.define
class FakeProbe:
    """A DependencyProbe that passes, fails with ``failure``, or hangs; counts its checks."""

    name: str
    required: bool
    failure: Exception | None = None
    hang: bool = False
    calls: int = 0

    async def check(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.failure is not None:
            raise self.failure


def process_job_parts(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """What ProcessJob is built from, every port a fake: ``talk.mp4`` is 120 s, loudest from 60 to 90 s;
    one attempt per job unless ``policy`` says otherwise."""
    parts: dict[str, Any] = {
        "fetcher": FakeFetcher({"talk.mp4": "a" * 64}),
        "analyzer": FakeAnalyzer(),
        "transcriber": FakeTranscriber(),
        "model": FakeModel(),
        "renderer": FakeRenderer(),
        "store": FakeStore(tmp_path),
        "cache": MemoryCache(),
        "uow": MemoryUnitOfWorkFactory(),
        "policy": JobRunPolicy(retry=RetryPolicy(max_attempts=1)),
    }
    parts.update(overrides)
    return parts
