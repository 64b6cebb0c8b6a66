"""Speech to timed words with pocketsphinx (the en-us model inside the wheel), chunked at pauses and
recognised in parallel worker processes."""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from importlib.metadata import version as package_version
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
import av
import numpy as np
from pocketsphinx import Decoder

from domain.errors import MediaError
from domain.media import Analysis, Span, Transcript, Word
from domain.ports import Progress, no_progress

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 100  # pocketsphinx and the cut search both work in 10 ms frames
FRAMES_PER_SECOND = 100
PAD_SECONDS = 0.25  # VAD edges clip soft word onsets and endings; keep a little room around each segment
CUT_WINDOW = 0.25  # a long segment is cut at its quietest frame in the last quarter before the limit
SILENT_RMS = 0.01  # -40 dBFS: the loudest 10 ms of silent audio (room tone, dither) stays below this
MODEL_REVISION = 1  # bump when chunking or decoding changes, so cached transcripts are recomputed

_ALTERNATE = re.compile(r"\(\d+\)$")

# One decoder per worker process, built once by the pool's initializer: loading the model takes ~0.3 s.
_decoder: Any = None

RawWord = tuple[str, int, int, float]  # text, first frame, last frame, posterior probability


def _init_worker() -> None:
    global _decoder
    _decoder = Decoder(loglevel="ERROR")


def _recognise(pcm: bytes) -> list[RawWord]:
    """Decode one chunk of 16 kHz mono s16 audio as a single utterance."""
    if _decoder is None:
        _init_worker()
    decoder = _decoder
    # Feature state (CMN and friends) carries over between utterances and shifts words and posteriors;
    # resetting it (~0.1 ms) makes a chunk's words independent of which worker decoded what before.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [(seg.word, seg.start_frame, seg.end_frame, float(seg.prob)) for seg in decoder.seg()]


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


def decode_audio(path: Path) -> np.ndarray | None:
    """The first audio stream as 16 kHz mono int16 samples, or None when there is no audio stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            parts: list[np.ndarray] = []
            for frame in container.decode(stream):
                parts.extend(out.to_ndarray().ravel() for out in resampler.resample(frame))
            parts.extend(out.to_ndarray().ravel() for out in resampler.resample(None))
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(f"cannot decode the audio of {path.name}: {error}") from None
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """RMS of each complete 10 ms frame, in full-scale units (1.0 = 0 dBFS)."""
    n = audio.size // FRAME
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float32) / 32768.0
    return np.sqrt(np.mean(frames * frames, axis=1)) if n else np.zeros(0, np.float32)


# ---------------------------------------------------------------- chunking


def plan_chunks(speech: Sequence[Span], audio: np.ndarray, chunk_seconds: float) -> list[tuple[int, int]]:
    """Sample ranges to recognise: speech segments merged into chunks of at most ``chunk_seconds``, cut
    only in the gaps between segments; a longer segment is cut at its quietest 10 ms near the limit.
    Audio outside every segment is skipped. Without segments, audio that is not silent is cut the same way.
    """
    total = audio.size
    limit = max(FRAME, int(chunk_seconds * SAMPLE_RATE))
    rms = frame_rms(audio)
    if not speech:
        if rms.size == 0 or float(rms.max()) < SILENT_RMS:
            return []
        speech = [Span(0.0, total / SAMPLE_RATE)]

    pad = int(PAD_SECONDS * SAMPLE_RATE)
    segments: list[list[int]] = []
    for span in sorted(speech, key=lambda s: s.start):
        a = max(0, int(span.start * SAMPLE_RATE) - pad)
        b = min(total, int(span.end * SAMPLE_RATE) + pad)
        if b <= a:
            continue
        if segments and a <= segments[-1][1]:
            segments[-1][1] = max(segments[-1][1], b)
        else:
            segments.append([a, b])

    chunks: list[tuple[int, int]] = []
    for a, b in segments:
        for piece in _split_long(a, b, limit, rms):
            if chunks and piece[1] - chunks[-1][0] <= limit:
                chunks[-1] = (chunks[-1][0], piece[1])  # the gap between them stays inside this chunk
            else:
                chunks.append(piece)
    return chunks


def _split_long(a: int, b: int, limit: int, rms: np.ndarray) -> list[tuple[int, int]]:
    pieces = []
    window = max(1, int(limit * CUT_WINDOW) // FRAME)
    while b - a > limit:
        last = (a + limit) // FRAME  # the frame that would end at the limit
        first = max(a // FRAME + 1, last - window)
        quiet = rms[first:last]
        cut = (first + int(np.argmin(quiet))) * FRAME if quiet.size else a + limit
        pieces.append((a, cut))
        a = cut
    pieces.append((a, b))
    return pieces


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
        audio = decode_audio(path)
        if audio is None or audio.size == 0:
            progress(1.0)
            return Transcript()
        chunks = plan_chunks(analysis.speech, audio, self.chunk_seconds)
        results: dict[int, list[RawWord]] = {}
        if chunks:
            pool = self._executor()
            futures = {pool.submit(_recognise, audio[a:b].tobytes()): i for i, (a, b) in enumerate(chunks)}
            try:
                for done in as_completed(futures):
                    results[futures[done]] = done.result()
                    progress(len(results) / len(chunks))
            except BrokenProcessPool:
                self.close()  # a killed worker (out of memory) breaks a pool for good; start anew next call
                raise
        else:
            progress(1.0)
        words = [word for i, (a, _) in enumerate(chunks) for word in to_words(results[i], a / SAMPLE_RATE)]
        return Transcript(tuple(words), language="en")

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                # forkserver: forking a parent that already runs torch's thread pools can deadlock a child.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers or _default_workers(),
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_init_worker,
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
