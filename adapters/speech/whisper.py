"""The Transcriber port on faster-whisper (Whisper on CTranslate2): punctuated, cased words with times.

Audio is cut at pauses into chunks of at most one Whisper window (adapters.speech.chunks) and streamed:
chunks are recognised as they are decoded, by ``workers`` model replicas side by side (on a small CPU, two
one-thread replicas outrun one two-thread replica by a quarter), and a bounded queue keeps memory flat on
long files. Chunks never overlap, so no word is heard twice. A chunk the recogniser fails on is logged and
skipped: it costs its own words, never the transcript.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version as package_version
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from adapters.speech.audio import audio_start, stream_audio
from adapters.speech.chunks import stream_chunks
from adapters.speech.vad import SAMPLE_RATE, SileroVad
from adapters.speech.whisper_model import SpeechModelError, WhisperModelFiles, resolve
from domain.media import Analysis, Segment, Span, Transcript, Word
from domain.ports import Progress, no_progress

REVISION = 1  # bump when chunking or decoding changes, so cached transcripts are recomputed
WINDOW_SECONDS = 30.0  # Whisper hears 30 s at a time; a shorter chunk is padded, a longer one cut
MAX_WORKERS = 4
# Greedy first; a window that loops or reads as noise is decoded again, warmer, and the likeliest kept.
TEMPERATURES = (0.0, 0.4, 0.8)
VAD_BLOCK_SECONDS = 120.0  # the VAD pays a fixed number of model steps per block: feed it long blocks

log = logging.getLogger(__name__)

# faster-whisper logs two info lines per call, that is per chunk: thousands for a long video.
logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def whisper_device(device: str) -> str:
    """DEVICE (auto, cpu, cuda, mps) as CTranslate2 knows it: CUDA when asked for or present, else the CPU
    (CTranslate2 has no mps)."""
    if device == "cuda":
        return "cuda"
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return "cpu"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@attrs.frozen
class _Heard:
    """One chunk's words, grouped as Whisper phrased them, in seconds from the chunk's first sample."""

    phrases: tuple[tuple[Word, ...], ...]
    language: str


@attrs.define
class WhisperTranscriber:
    """Transcriber port on faster-whisper; the model loads on first use (or ``load()``) and stays loaded
    until ``close()``, so a process pays for it once."""

    files: WhisperModelFiles
    device: str = "cpu"
    compute_type: str = attrs.field(default="auto")
    threads: int = 0  # CPU threads in all; 0: every core this process may use
    chunk_seconds: float = 29.0
    version: str = attrs.field(init=False)
    _model: WhisperModel | None = attrs.field(init=False, default=None)
    # Use cases call ports from worker threads; two first calls at once must not load two models.
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.chunk_seconds <= WINDOW_SECONDS:
            raise ValueError(f"chunk_seconds must be in (0, {WINDOW_SECONDS:g}]")
        if self.threads < 0:
            raise ValueError("threads must be at least 0")
        if self.compute_type == "auto":
            self.compute_type = "float16" if self.device == "cuda" else "int8"
        engine = f"faster-whisper-{package_version('faster-whisper')}"
        self.version = f"{engine}/{self.files.identity}/{self.device}-{self.compute_type}/r{REVISION}"

    @classmethod
    def open(cls, model: str, **settings: Any) -> WhisperTranscriber:
        """Resolve ``model`` (a WHISPER_MODEL value), check its files and load it."""
        transcriber = cls(resolve(model), **settings)
        transcriber.load()
        return transcriber

    @property
    def workers(self) -> int:
        return 1 if self.device == "cuda" else min(self.threads or _cores(), MAX_WORKERS)

    def load(self) -> WhisperModel:
        with self._lock:
            if self._model is None:
                self.files.verify()
                self._model = self._build()
            return self._model

    def _build(self) -> WhisperModel:
        threads = max(1, (self.threads or _cores()) // self.workers)
        try:
            return WhisperModel(
                str(self.files.path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=threads,
                num_workers=self.workers,
                local_files_only=True,
            )
        except (ValueError, RuntimeError) as error:  # a compute type the device lacks, a broken model.bin
            raise SpeechModelError(
                f"Whisper model {self.files.label} cannot run on {self.device} as {self.compute_type}: "
                f"{' '.join(str(error).split())}"
            ) from None

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        first_sample = audio_start(path)
        if first_sample is None:
            progress(1.0)
            return Transcript()
        # Sample 0 of the decoded audio sits ``offset`` seconds into media time (speech spans, word times).
        offset = first_sample - analysis.info.start_time
        speech = [Span(max(0.0, s.start - offset), max(0.0, s.end - offset)) for s in analysis.speech]
        if not speech:  # an audio file, or a video whose analysis heard nothing: listen once more
            speech = find_speech(path)
        if not speech:
            progress(1.0)
            return Transcript()
        model = self.load()
        duration = max(analysis.info.duration, 1e-3)
        heard: list[tuple[float, _Heard]] = []
        in_flight: deque[tuple[int, int, Future[_Heard]]] = deque()

        def collect_oldest() -> None:
            a, b, future = in_flight.popleft()
            start, end = a / SAMPLE_RATE + offset, b / SAMPLE_RATE + offset
            try:
                heard.append((start, future.result()))
            except MemoryError:  # the process's trouble, not this chunk's
                raise
            except Exception as error:
                # One chunk the recogniser cannot decode (a tone, a burst of noise) costs its words, not
                # the transcript: the video still has its picture and every other chunk.
                log.warning(
                    "speech chunk %.2f–%.2f s not recognised, skipped: %s: %s",
                    start,
                    end,
                    type(error).__name__,
                    error,
                )
            progress(min(1.0, end / duration))

        with ThreadPoolExecutor(self.workers, thread_name_prefix="whisper") as pool:
            try:
                for a, b, samples in stream_chunks(speech, stream_audio(path), self.chunk_seconds):
                    in_flight.append((a, b, pool.submit(self._recognise, model, samples)))
                    while len(in_flight) > 2 * self.workers:
                        collect_oldest()
                while in_flight:
                    collect_oldest()
            finally:
                for _, _, future in in_flight:
                    future.cancel()
        progress(1.0)
        return assemble(heard, [(s.start + offset, s.end + offset) for s in speech])

    def _recognise(self, model: WhisperModel, samples: np.ndarray) -> _Heard:
        audio = samples.astype(np.float32) / 32768.0
        length = audio.size / SAMPLE_RATE
        segments, info = model.transcribe(
            audio,
            language=None if model.model.is_multilingual else "en",
            beam_size=1,
            best_of=1,
            temperature=TEMPERATURES,
            word_timestamps=True,
            condition_on_previous_text=False,  # chunks are independent: a loop cannot spread between them
            vad_filter=False,  # the chunks are speech already
        )
        phrases = []
        for segment in segments:
            said = tuple(
                Word(
                    w.word.strip(),
                    min(max(float(w.start), 0.0), length),
                    min(max(float(w.end), 0.0), length),
                    min(1.0, max(0.0, float(w.probability))),
                )
                for w in segment.words or ()
                if w.word.strip()
            )
            if said:
                phrases.append(said)
        return _Heard(tuple(phrases), info.language)

    def close(self) -> None:
        """Unload the model; the next transcription loads it again."""
        with self._lock:
            self._model = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def find_speech(path: Path) -> list[Span]:
    """Speech segments of the decoded audio (time 0 = its first sample), from silero-vad."""
    vad = SileroVad()
    probabilities = [
        vad.probabilities(block.astype(np.float32) / 32768.0)
        for block in stream_audio(path, VAD_BLOCK_SECONDS)
    ]
    return list(vad.segments(np.concatenate(probabilities))) if probabilities else []


def assemble(heard: Sequence[tuple[float, _Heard]], speech: Sequence[tuple[float, float]] = ()) -> Transcript:
    """Chunks' words and segments in media time (each chunk's at its start), in order and never
    overlapping, their edges fitted to ``speech`` (media-time segments); words before media time 0 (audio
    ahead of the picture, such as aac priming) are dropped."""
    words: list[Word] = []
    segments: list[Segment] = []
    spoken: Counter[str] = Counter()
    edges = _SpeechEdges(speech)
    for start, chunk in heard:
        for phrase in chunk.phrases:
            spoken[chunk.language] += len(phrase)
            first = len(words)
            for word in phrase:
                begin, end = edges.fit(start + word.start, start + word.end)
                begin = max(begin, words[-1].end if words else 0.0)
                end = max(end, begin)
                if end > 0:
                    words.append(attrs.evolve(word, start=round(begin, 3), end=round(end, 3)))
            mine = words[first:]
            if mine:
                segments.append(Segment(" ".join(w.text for w in mine), mine[0].start, mine[-1].end))
    language = spoken.most_common(1)[0][0] if spoken else "en"
    return Transcript(tuple(words), language=language, segments=tuple(segments))


class _SpeechEdges:
    """Whisper's alignment stretches a phrase's first word back into the silence before it and its last
    word on into the silence after (by up to a second). A word edge that falls outside every speech segment
    moves to the nearest segment edge inside the word; a word wholly outside them keeps its times."""

    def __init__(self, speech: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(speech)
        self._starts = np.array([a for a, _ in ordered], np.float64)
        self._ends = np.array([b for _, b in ordered], np.float64)

    def _inside(self, t: float) -> bool:
        i = int(np.searchsorted(self._starts, t, side="right")) - 1
        return i >= 0 and t <= self._ends[i]

    def fit(self, start: float, end: float) -> tuple[float, float]:
        if not self._starts.size:
            return start, end
        if not self._inside(start):
            i = int(np.searchsorted(self._starts, start, side="right"))
            if i < self._starts.size and self._starts[i] < end:
                start = float(self._starts[i])
        if not self._inside(end):
            i = int(np.searchsorted(self._ends, end, side="left")) - 1
            if i >= 0 and self._ends[i] > start:
                end = float(self._ends[i])
        return start, end
