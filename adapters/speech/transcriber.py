"""Speech to timed words with pocketsphinx (the en-us model inside the wheel), chunked at pauses and
recognised in parallel worker processes."""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib.metadata import version as package_version
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs
import av
import numpy as np

from adapters.media.decoding import PacketDecoder
from adapters.speech.sphinx_worker import RawWord, init_worker, recognise
from domain.errors import MediaError
from domain.media import Analysis, Span, Transcript, Word
from domain.ports import Progress, no_progress

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 100  # pocketsphinx and the cut search both work in 10 ms frames
FRAMES_PER_SECOND = 100
PAD_SECONDS = 0.25  # VAD edges clip soft word onsets and endings; keep a little room around each segment
CUT_WINDOW = 0.25  # a long segment is cut at its quietest frame in the last quarter before the limit
SILENT_RMS = 0.01  # -40 dBFS: the loudest 10 ms of silent audio (room tone, dither) stays below this
MODEL_REVISION = 3  # bump when chunking or decoding changes, so cached transcripts are recomputed

_ALTERNATE = re.compile(r"\(\d+\)$")


def clean_word(word: str) -> str | None:
    """The spoken word without its pronunciation variant (``read(2)``), or None for silences, fillers
    and noise markers (``<sil>``, ``[NOISE]``, ``++UM++``)."""
    if word.startswith(("<", "[", "+")):
        return None
    return _ALTERNATE.sub("", word) or None


def _confidence(prob: float) -> float:
    # The 5.x bindings already turn the log posterior into a probability, which can round a hair above 1.
    p = math.exp(prob) if prob < 0 else prob
    return min(1.0, max(0.0, p))


def to_words(raw: Sequence[RawWord], start_seconds: float) -> list[Word]:
    words = []
    for text, first, last, prob in raw:
        word = clean_word(text)
        if word is None:
            continue
        start = start_seconds + first / FRAMES_PER_SECOND
        end = start_seconds + (last + 1) / FRAMES_PER_SECOND
        words.append(Word(word, round(start, 3), round(end, 3), _confidence(prob)))
    return words


# ---------------------------------------------------------------- audio


def has_audio(path: Path) -> bool:
    return audio_start(path) is not None


def audio_start(path: Path) -> float | None:
    """The file's own timestamp of its first audio sample (seconds), or None without an audio stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            for frame in PacketDecoder(path.name).frames(container, container.streams.audio[0]):
                if frame.time is not None:
                    return float(frame.time)
            return 0.0
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(f"cannot open {path.name}: {error}") from None


def stream_audio(path: Path, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """The first audio stream as 16 kHz mono int16, in blocks of about ``block_seconds``; never whole:
    four hours of it would be 460 MB."""
    block = int(block_seconds * SAMPLE_RATE)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            parts: list[np.ndarray] = []
            size = 0
            for frame in PacketDecoder(path.name).frames(container, container.streams.audio[0]):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().ravel())
                    size += parts[-1].size
                if size >= block:
                    yield np.concatenate(parts).astype(np.int16)
                    parts, size = [], 0
            parts.extend(out.to_ndarray().ravel() for out in resampler.resample(None))
            if parts:
                yield np.concatenate(parts).astype(np.int16)
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(f"cannot decode the audio of {path.name}: {error}") from None


def decode_audio(path: Path) -> np.ndarray | None:
    """All of the first audio stream (for short files and tests), or None when there is none."""
    if not has_audio(path):
        return None
    blocks = list(stream_audio(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.int16)


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """RMS of each complete 10 ms frame, in full-scale units (1.0 = 0 dBFS)."""
    n = audio.size // FRAME
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float32) / 32768.0
    return np.sqrt(np.mean(frames * frames, axis=1)) if n else np.zeros(0, np.float32)


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


# ---------------------------------------------------------------- chunking


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
        quiet = frame_rms(window.slice(first, last))
        cut = first + int(np.argmin(quiet)) * FRAME if quiet.size else last
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


# ---------------------------------------------------------------- the adapter


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@attrs.define
class PocketSphinxTranscriber:
    """Transcriber port on pocketsphinx: audio cut at pauses into chunks, decoded by a pool of processes.

    The pool starts on first use and lives until ``close()`` (or the end of a ``with`` block), so a worker
    pays for process start-up and model loading once, not per video.
    """

    workers: int | None = None
    chunk_seconds: float = 20.0
    version: str = attrs.field(
        init=False, factory=lambda: f"pocketsphinx-{package_version('pocketsphinx')}-en-us/{MODEL_REVISION}"
    )
    _pool: ProcessPoolExecutor | None = attrs.field(init=False, default=None)
    # Use cases call ports from worker threads; two first calls at once must not start two pools.
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        if self.chunk_seconds <= 0:
            raise ValueError("chunk_seconds must be positive")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        first_sample = audio_start(path)
        if first_sample is None:
            progress(1.0)
            return Transcript()
        # Sample 0 of the decoded audio sits ``offset`` seconds into media time (speech spans, word times).
        offset = first_sample - analysis.info.start_time
        speech = [Span(max(0.0, s.start - offset), max(0.0, s.end - offset)) for s in analysis.speech]
        duration = max(analysis.info.duration, 1e-3)
        words: list[Word] = []
        # Chunks are decoded as the audio streams in; a bounded queue keeps memory flat on long files.
        in_flight: deque[tuple[int, int, Future[list[RawWord]]]] = deque()

        def collect_oldest() -> None:
            a, b, future = in_flight.popleft()
            for word in to_words(future.result(), a / SAMPLE_RATE + offset):
                if word.end > 0:  # audio from before the picture's first timestamp (aac priming) is cut
                    words.append(attrs.evolve(word, start=max(0.0, word.start)))
            progress(min(1.0, b / SAMPLE_RATE / duration))

        try:
            for a, b, samples in stream_chunks(speech, stream_audio(path), self.chunk_seconds):
                pool = self._executor()
                in_flight.append((a, b, pool.submit(recognise, samples.tobytes())))
                while len(in_flight) > 2 * (self.workers or _default_workers()):
                    collect_oldest()
            while in_flight:
                collect_oldest()
        except BrokenProcessPool:
            self.close()  # a killed worker (out of memory) breaks a pool for good; start anew next call
            raise
        finally:
            for _, _, future in in_flight:
                future.cancel()
        progress(1.0)
        return Transcript(tuple(words), language="en")

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: forking a parent that already runs torch's thread pools can deadlock a child.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers or _default_workers(),
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=init_worker,
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker processes; the next transcription starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
