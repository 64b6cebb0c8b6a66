"""The analyzer's audio half: 16 kHz mono blocks to per-second loudness and speech activity.

Audio is streamed: only per-second sums and the VAD's per-window probabilities are kept (a 4-hour
file holds ~450k probabilities, not 900 MB of samples).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import av
import numpy as np

from adapters.media.decoding import PacketDecoder, main_audio
from adapters.media.timeline import timeline
from adapters.speech.vad import SAMPLE_RATE, WINDOW_SECONDS, SileroVad
from domain.media import Span

SILENCE_DB = -100.0  # loudness of digital silence, so the column stays finite
# The VAD batches within a block and pays a fixed number of model steps per block: feed it long blocks.
VAD_BLOCK = 120 * SAMPLE_RATE


@attrs.frozen(eq=False)
class AudioStats:
    loudness: np.ndarray  # RMS dBFS per second
    speech_prob: np.ndarray  # mean VAD probability per second (0 without a VAD)
    speech: tuple[Span, ...]

    @classmethod
    def silent(cls, seconds: int) -> AudioStats:
        return cls(np.full(seconds, SILENCE_DB), np.zeros(seconds), ())

    def columns(self) -> np.ndarray:
        """(seconds, 3): loudness, loudness_delta (abs change from the second before), speech_prob."""
        delta = np.abs(np.diff(self.loudness, prepend=self.loudness[:1]))
        return np.column_stack([self.loudness, delta, self.speech_prob])


def audio_pass(
    path: Path, seconds: int, vad: SileroVad | None, progress: list[float], origin: float = 0.0
) -> AudioStats:
    """Decode the main audio stream once; ``progress[0]`` is updated for a watcher in another thread."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    acc: _Accumulator | None = None
    with av.open(str(path)) as container:
        stream = main_audio(container)
        if stream is None:
            progress[0] = 1.0
            return AudioStats.silent(seconds)
        stream.codec_context.thread_count = 1
        for frame in PacketDecoder(path.name).frames(timeline(container).demux(container, stream)):
            if acc is None:
                pts, time_base = frame.pts, frame.time_base
                start = float(pts * time_base) - origin if pts is not None and time_base is not None else 0.0
                acc = _Accumulator(seconds, start, vad)
            for out in resampler.resample(frame):
                acc.add(out.to_ndarray().ravel())
            progress[0] = min(1.0, acc.now / max(seconds, 1))
        if acc is not None:
            for out in resampler.resample(None):
                acc.add(out.to_ndarray().ravel())
    progress[0] = 1.0
    return acc.finish() if acc is not None else AudioStats.silent(seconds)


@attrs.define
class _Accumulator:
    """Per-second sums of squares, and VAD probabilities computed on long blocks."""

    seconds: int
    start: float  # time of the first sample (aac priming can make it slightly negative)
    vad: SileroVad | None
    position: int = 0  # samples at 16 kHz since ``start``
    squares: np.ndarray = attrs.field(init=False)
    counts: np.ndarray = attrs.field(init=False)
    pending: list[np.ndarray] = attrs.field(factory=list)
    pending_size: int = 0
    probs: list[np.ndarray] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.squares = np.zeros(self.seconds)
        self.counts = np.zeros(self.seconds)
        if self.vad is not None:
            self.vad.reset()

    @property
    def now(self) -> float:
        return self.start + (self.position + self.pending_size) / SAMPLE_RATE

    def add(self, block: np.ndarray) -> None:
        # Decoded frames are small (~1024 samples); work per block keeps the per-frame cost O(1).
        self.pending.append(block)
        self.pending_size += block.size
        if self.pending_size >= VAD_BLOCK:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        block = np.concatenate(self.pending)
        self.pending, self.pending_size = [], 0
        first = self.start * SAMPLE_RATE + self.position
        idx = ((first + np.arange(block.size)) // SAMPLE_RATE).astype(np.int64)
        keep = (idx >= 0) & (idx < self.seconds)
        if keep.any():
            # Only the seconds this block covers: a 4-hour file must not cost O(seconds) per block.
            local = idx[keep] - idx[keep][0]
            window = slice(int(idx[keep][0]), int(idx[keep][0]) + int(local[-1]) + 1)
            self.squares[window] += np.bincount(local, block[keep].astype(np.float64) ** 2)
            self.counts[window] += np.bincount(local)
        self.position += block.size
        if self.vad is not None:
            self.probs.append(self.vad.probabilities(block))

    def finish(self) -> AudioStats:
        self._flush()
        rms = np.sqrt(self.squares / np.maximum(self.counts, 1))
        loudness = np.where(self.counts > 0, 20 * np.log10(np.maximum(rms, 1e-5)), SILENCE_DB)
        if self.vad is None or not self.probs:
            return AudioStats(loudness, np.zeros(self.seconds), ())
        p = np.concatenate(self.probs)
        second = ((self.start + np.arange(p.size) * WINDOW_SECONDS) // 1).astype(np.int64)
        keep = (second >= 0) & (second < self.seconds)
        total = np.bincount(second[keep], p[keep], self.seconds)
        speech_prob = total / np.maximum(np.bincount(second[keep], minlength=self.seconds), 1)
        spans = tuple(
            Span(round(max(s.start + self.start, 0.0), 3), round(max(s.end + self.start, 0.0), 3))
            for s in self.vad.segments(p)
            if s.end + self.start > 0 and s.start + self.start < self.seconds
        )
        return AudioStats(loudness, speech_prob, spans)
