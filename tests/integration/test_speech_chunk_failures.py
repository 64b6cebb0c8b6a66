"""A chunk the recogniser fails on costs that chunk's words, never the transcript (real files, the real
tiny.en model; the failure is injected at faster-whisper's public ``WhisperModel.transcribe``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faster_whisper
import numpy as np
import pytest

from adapters.media.synthetic import SPEECH_RATE, Scene, speak, write_video
from adapters.speech.whisper import WhisperTranscriber
from domain.media import MEDIA_FEATURES, Analysis, MediaInfo

SENTENCES = ("The quick brown fox jumps over the lazy dog.", "Thank you very much for watching.")


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Analysis]:
    """Two sentences with a pause between them, so that 4-second chunks hear one each."""
    scenes = [
        Scene(np.ceil(speak(text).size / SPEECH_RATE + 1.5), (40, 60, 120), speech=text) for text in SENTENCES
    ]
    path = tmp_path_factory.mktemp("chunks") / "talk.mp4"
    truth = write_video(path, scenes, size=(160, 90), fps=10)
    info = MediaInfo(truth.duration, *truth.size, truth.fps, "h264", "aac", True)
    features = np.zeros((int(np.ceil(truth.duration)), len(MEDIA_FEATURES)), np.float32)
    return path, Analysis(info, MEDIA_FEATURES, features, (), truth.speech_spans)


@pytest.fixture(scope="module")
def transcriber() -> Iterator[WhisperTranscriber]:
    # One worker: chunks are recognised one after another, in order, so "the first call" is the first chunk.
    with WhisperTranscriber.open("tiny.en", threads=1, chunk_seconds=4.0) as shared:
        yield shared


def test_a_chunk_that_fails_to_decode_is_logged_and_skipped(
    talk: tuple[Path, Analysis],
    transcriber: WhisperTranscriber,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, analysis = talk
    recognise = faster_whisper.WhisperModel.transcribe
    calls = 0

    def first_chunk_fails(self: Any, audio: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("Empty backpointer table")
        return recognise(self, audio, *args, **kwargs)

    monkeypatch.setattr(faster_whisper.WhisperModel, "transcribe", first_chunk_fails)
    progress: list[float] = []
    with caplog.at_level(logging.WARNING, logger="adapters.speech.whisper"):
        transcript = transcriber.transcribe(path, analysis, progress.append)

    assert calls == 2, "one chunk per sentence"
    heard = transcript.text.lower()
    assert "watching" in heard and "fox" not in heard, heard
    first = analysis.speech[0]
    assert all(word.start >= first.end for word in transcript.words)
    assert progress[-1] == 1.0
    skipped = [r for r in caplog.records if "not recognised" in r.getMessage()]
    assert len(skipped) == 1 and "Empty backpointer table" in skipped[0].getMessage()


def test_when_every_chunk_fails_the_transcript_is_empty(
    talk: tuple[Path, Analysis], transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_fails(self: Any, audio: Any, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("cannot decode this window")

    monkeypatch.setattr(faster_whisper.WhisperModel, "transcribe", always_fails)
    path, analysis = talk
    assert transcriber.transcribe(path, analysis).words == ()
