"""The media ports, each call run in an isolated child process (adapters.media.isolation).

A wrapper holds a picklable zero-argument ``build`` that makes the real adapter inside the child; the
child calls it, closes it when it has ``close()`` (the recogniser unloads its model), and exits. Deadlines
grow with the media a call decodes: ``timeout_seconds + timeout_factor × seconds``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.faces import HaarFaceTracker
from adapters.media.isolation import Isolation
from adapters.media.probe import MediaLimits
from adapters.media.renderer import PyAVClipRenderer
from adapters.speech.vad import SileroVad
from domain.media import Analysis, Clip, ClipOptions, MediaInfo, RenderedClip, Transcript
from domain.ports import Progress, no_progress


@attrs.frozen
class IsolationLimits:
    memory_bytes: int
    timeout_seconds: float
    timeout_factor: float

    def deadline(self, media_seconds: float = 0.0) -> float:
        return self.timeout_seconds + self.timeout_factor * media_seconds


# Builds for the service's own adapters: the silero model and the Haar cascade do not pickle, so a
# ``functools.partial`` of the adapter class cannot carry them; these make them in the child.
def analyzer_with_vad(limits: MediaLimits) -> PyAVMediaAnalyzer:
    return PyAVMediaAnalyzer(limits, vad=SileroVad())


def renderer_with_faces() -> PyAVClipRenderer:
    return PyAVClipRenderer(faces=HaarFaceTracker())


def _use(build: Callable[[], Any], method: str, *args: Any, progress: Progress | None = None) -> Any:
    """In the child: build the adapter, make one call, release what it holds."""
    adapter = build()
    try:
        if progress is None:
            return getattr(adapter, method)(*args)
        return getattr(adapter, method)(*args, progress=progress)
    finally:
        _release(adapter)


def _release(adapter: Any) -> None:
    close = getattr(adapter, "close", None)
    if callable(close):
        close()


def _built_version(wrapper: Any) -> str:
    """The inner adapter's version, from one built here: cheap, as no file is opened and pools start on
    first use (~0.1 s for the analyzer, its silero model)."""
    adapter = wrapper.build()
    try:
        return str(adapter.version)
    finally:
        _release(adapter)


@attrs.define
class _Isolated:
    """A port whose every call runs ``build()``'s adapter in a child, with a deadline that grows with the
    media the call decodes."""

    build: Callable[[], Any]
    isolation: Isolation
    limits: IsolationLimits
    version: str = attrs.field(default=attrs.Factory(_built_version, takes_self=True))

    def _call(
        self, method: str, *args: Any, media_seconds: float = 0.0, progress: Progress | None = None
    ) -> Any:
        return self.isolation.run(
            _use,
            self.build,
            method,
            *args,
            memory_bytes=self.limits.memory_bytes,
            timeout_seconds=self.limits.deadline(media_seconds),
            progress=progress,
        )


@attrs.define
class IsolatedMediaAnalyzer(_Isolated):
    def probe(self, path: Path) -> MediaInfo:
        info: MediaInfo = self._call("probe", path)
        return info

    def analyze(self, path: Path, info: MediaInfo, progress: Progress = no_progress) -> Analysis:
        analysis: Analysis = self._call("analyze", path, info, media_seconds=info.duration, progress=progress)
        return analysis


@attrs.define
class IsolatedTranscriber(_Isolated):
    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        seconds = analysis.info.duration
        transcript: Transcript = self._call(
            "transcribe", path, analysis, media_seconds=seconds, progress=progress
        )
        return transcript


@attrs.define
class IsolatedClipRenderer(_Isolated):
    def render(
        self,
        source: Path,
        info: MediaInfo,
        clip: Clip,
        options: ClipOptions,
        out_dir: Path,
        progress: Progress = no_progress,
    ) -> RenderedClip:
        args = (source, info, clip, options, out_dir)
        rendered: RenderedClip = self._call(
            "render", *args, media_seconds=clip.span.duration, progress=progress
        )
        return rendered
