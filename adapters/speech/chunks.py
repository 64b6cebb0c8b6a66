"""Where long audio is cut for recognition: speech segments merged into chunks of at most one recogniser
window, cut only in the pauses between segments, streamed so only the chunk being built is in memory.

Chunks never overlap and each sample belongs to at most one, so a word is never heard twice; a cut falls
in a pause, or (inside a segment longer than a window) at its quietest 10 ms, so a word is not split.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

import numpy as np

from adapters.speech.vad import SAMPLE_RATE
from domain.media import Span

FRAME = SAMPLE_RATE // 100  # the cut search works in 10 ms frames
PAD_SECONDS = 0.25  # VAD edges clip soft word onsets and endings; keep a little room around each segment
CUT_WINDOW = 0.25  # a long segment is cut at its quietest frame in the last quarter before the limit
PAUSE_FRAMES = 15  # a cut inside a long segment looks for the quietest 150 ms
SILENT_RMS = 0.01  # -40 dBFS: the loudest 10 ms of silent audio (room tone, dither) stays below this


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """RMS of each complete 10 ms frame, in full-scale units (1.0 = 0 dBFS)."""
    n = audio.size // FRAME
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float32) / 32768.0
    return np.sqrt(np.mean(frames * frames, axis=1)) if n else np.zeros(0, np.float32)


def quietest_frame(rms: np.ndarray) -> int:
    """The quietest frame inside the quietest ``PAUSE_FRAMES`` stretch: a pause between words rather than
    the closure of a stop consonant, which is as quiet for 10 ms but not for 150."""
    if rms.size == 0:
        return 0
    span = min(PAUSE_FRAMES, rms.size)
    energy = np.convolve(rms, np.ones(span), mode="valid")
    start = int(np.argmin(energy))
    return start + int(np.argmin(rms[start : start + span]))


class _Window:
    """Decoded audio from ``start`` (an absolute sample index) on, read from the blocks only as needed."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = blocks
        self._data = np.zeros(0, np.int16)
        self.start = 0
        self.finished = False

    @property
    def end(self) -> int:
        return self.start + self._data.size

    def reach(self, sample: int) -> int:
        """Decode until ``sample`` (or the end of the audio); returns how far the audio goes, up to it."""
        while self.end < sample and not self.finished:
            block = next(self._blocks, None)
            if block is None:
                self.finished = True
            else:
                self._data = np.concatenate([self._data, block])
        return min(sample, self.end)

    def slice(self, a: int, b: int) -> np.ndarray:
        return self._data[a - self.start : b - self.start]

    def forget_before(self, sample: int) -> None:
        if sample > self.start:
            self._data = self._data[sample - self.start :].copy()
            self.start = sample


def stream_chunks(
    speech: Sequence[Span], blocks: Iterator[np.ndarray], chunk_seconds: float
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Sample ranges to recognise, with their samples, in order: speech segments merged into chunks of at
    most ``chunk_seconds``, cut only in the gaps between segments; a longer segment is cut at its quietest
    10 ms near the limit. Audio outside every segment is skipped. Without segments, every stretch of
    audio that is not silent is cut the same way. Only the chunk being built is held in memory.
    """
    limit = max(FRAME, int(chunk_seconds * SAMPLE_RATE))
    window = _Window(blocks)
    pad = int(PAD_SECONDS * SAMPLE_RATE)
    segments: list[list[int]] = []
    for span in sorted(speech, key=lambda s: s.start):
        a, b = max(0, int(span.start * SAMPLE_RATE) - pad), int(span.end * SAMPLE_RATE) + pad
        if segments and a <= segments[-1][1]:
            segments[-1][1] = max(segments[-1][1], b)
        elif b > a:
            segments.append([a, b])
    skip_silent = not speech
    if skip_silent:
        segments = [[0, sys.maxsize]]  # the whole audio, however long it turns out to be

    pending: tuple[int, int] | None = None
    for a, b in segments:
        for piece in _pieces(a, b, limit, window):
            if pending is not None and piece[1] - pending[0] <= limit:
                pending = (pending[0], piece[1])  # the gap between them stays inside this chunk
                continue
            if pending is not None:
                yield from _emit(pending, window, skip_silent)
            pending = piece
            window.forget_before(piece[0])
    if pending is not None:
        yield from _emit(pending, window, skip_silent)


def _pieces(a: int, b: int, limit: int, window: _Window) -> Iterator[tuple[int, int]]:
    while True:
        reached = window.reach(min(b, a + limit + 1))
        if reached <= a:
            return  # the segment starts after the audio ends
        if reached - a <= limit:
            yield a, reached
            return
        last = a + limit
        first = max(a + FRAME, last - int(limit * CUT_WINDOW))
        cut = first + quietest_frame(frame_rms(window.slice(first, last))) * FRAME
        yield a, cut
        a = cut


def _emit(
    chunk: tuple[int, int], window: _Window, skip_silent: bool
) -> Iterator[tuple[int, int, np.ndarray]]:
    samples = window.slice(*chunk)
    if skip_silent and float(frame_rms(samples).max(initial=0.0)) < SILENT_RMS:
        return
    yield chunk[0], chunk[1], samples


def plan_chunks(speech: Sequence[Span], audio: np.ndarray, chunk_seconds: float) -> list[tuple[int, int]]:
    """The sample ranges ``stream_chunks`` would recognise in ``audio``."""
    return [(a, b) for a, b, _ in stream_chunks(speech, iter([audio]), chunk_seconds)]
