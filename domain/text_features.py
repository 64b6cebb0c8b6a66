"""Per-second features and cut points derived from a transcript's words and sentences (domain.sentences)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import attrs
import numpy as np

from domain.media import Span, Transcript
from domain.sentences import SENTENCE_PAUSE, Phrase, Sentence, sentences

CUT_PADDING = 0.25  # seconds of breathing room kept around speech at a cut, at most half the gap

# How clean a cut is, 0..1; selection rewards clean starts and ends with a small bonus.
SENTENCE_STRENGTH = 1.0
CLAUSE_STRENGTH = 0.6  # only inside a sentence too long for a clip
WORD_GAP_STRENGTH = 0.5  # at most, for a full sentence pause; only inside a clause too long for a clip
SILENCE_STRENGTH = 0.8  # a gap between voice-activity segments
SHOT_CUT_STRENGTH = 0.6
VIDEO_EDGE_STRENGTH = 0.5  # the very start or end of the video may hold dead air
GRID_STRENGTH = 0.0
GRID_GAP = 5.0  # grid points fill only stretches this long without any other cut point


@attrs.frozen(eq=False)
class Boundaries:
    """Where a clip may start and where it may end (ascending times), each with a strength in 0..1.

    No time lies strictly inside a word, so a clip cut at these points never splits one.
    """

    starts: np.ndarray
    start_strength: np.ndarray
    ends: np.ndarray
    end_strength: np.ndarray


def _word_arrays(transcript: Transcript) -> tuple[np.ndarray, np.ndarray]:
    words = sorted(transcript.words, key=lambda w: (w.start, w.end))
    starts = np.array([w.start for w in words], dtype=np.float64)
    ends = np.array([max(w.start, w.end) for w in words], dtype=np.float64)
    return starts, ends


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals sorted by start: overlapping words become one stretch of speech.

    Words that only touch stay apart, so the instant between them remains a (weak) cut point.
    """
    if starts.size == 0:
        return starts, ends
    reach = np.maximum.accumulate(ends)
    new_run = np.ones(starts.size, dtype=bool)
    new_run[1:] = starts[1:] >= reach[:-1]
    run = np.cumsum(new_run) - 1
    merged_starts = starts[new_run]
    merged_ends = np.zeros(merged_starts.size)
    np.maximum.at(merged_ends, run, reach)
    return merged_starts, merged_ends


def _per_second(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray, seconds: int) -> np.ndarray:
    """Sum over intervals of weight × overlap with each second [i, i+1)."""
    out = np.zeros(seconds, dtype=np.float64)
    keep = (ends > starts) & (ends > 0) & (starts < seconds)
    s, e, w = starts[keep], ends[keep], weights[keep]
    if s.size == 0:
        return out
    first = np.clip(np.floor(s), 0, seconds - 1).astype(np.int64)
    last = np.clip(np.ceil(e) - 1, 0, seconds - 1).astype(np.int64)
    counts = last - first + 1
    owner = np.repeat(np.arange(s.size), counts)
    second = first[owner] + np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    overlap = np.minimum(e[owner], second + 1.0) - np.maximum(s[owner], second)
    np.add.at(out, second, np.clip(overlap, 0.0, None) * w[owner])
    return out


def text_features(transcript: Transcript, seconds: int) -> np.ndarray:
    """(seconds × 3) float32 in TEXT_FEATURES order: speaking_rate, pause, sentence_end."""
    out = np.zeros((seconds, 3), dtype=np.float32)
    if seconds <= 0:
        return out
    starts, ends = _word_arrays(transcript)
    lengths = ends - starts
    timed = lengths > 0
    # A word counts once in total, spread over the seconds it is spoken in.
    rate = _per_second(starts[timed], ends[timed], 1.0 / lengths[timed], seconds)
    instant = np.clip(np.floor(starts[~timed]), 0, seconds - 1).astype(np.int64)
    np.add.at(rate, instant[(starts[~timed] >= 0) & (starts[~timed] < seconds)], 1.0)
    speech_starts, speech_ends = _merge(starts, ends)
    covered = _per_second(speech_starts, speech_ends, np.ones(speech_starts.size), seconds)
    out[:, 0] = rate
    out[:, 1] = np.clip(1.0 - covered, 0.0, 1.0)
    closes = np.array([s.end for s in sentences(transcript.words)], dtype=np.float64)
    closes = closes[(closes >= 0) & (closes < seconds)]
    out[np.floor(closes).astype(np.int64), 2] = 1.0
    return out


def _outside_words(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of times not strictly inside any word (start < t < end)."""
    timed = ends > starts
    s, e = np.sort(starts[timed]), np.sort(ends[timed])
    inside = np.searchsorted(s, times, side="left") - np.searchsorted(e, times, side="right")
    return inside <= 0


def _grid(existing: np.ndarray, duration: float) -> np.ndarray:
    """Whole seconds farther than GRID_GAP from every other cut point: a last resort for silent stretches."""
    grid = np.arange(0.0, np.floor(duration) + 1.0)
    if existing.size == 0:
        return grid
    ordered = np.sort(existing)
    pos = np.searchsorted(ordered, grid)
    left = ordered[np.clip(pos - 1, 0, ordered.size - 1)]
    right = ordered[np.clip(pos, 0, ordered.size - 1)]
    nearest = np.minimum(np.abs(grid - left), np.abs(grid - right))
    return grid[nearest > GRID_GAP]


@attrs.define
class _Points:
    """Cut points being gathered, as (time, strength) lists for starts and for ends."""

    starts: list[tuple[float, float]] = attrs.field(factory=list)
    ends: list[tuple[float, float]] = attrs.field(factory=list)

    def around(self, units: Sequence[Phrase], strength: float | None) -> None:
        """The cuts between consecutive units, each padded into the silence between them by up to half;
        a ``None`` strength grows with the silence, up to WORD_GAP_STRENGTH for a sentence pause."""
        for before, after in itertools.pairwise(units):
            gap = max(0.0, after.start - before.end)
            weight = min(gap / SENTENCE_PAUSE, 1.0) * WORD_GAP_STRENGTH if strength is None else strength
            self.ends.append((before.end + min(CUT_PADDING, gap / 2), weight))
            self.starts.append((after.start - min(CUT_PADDING, gap / 2), weight))

    def inside(self, sentence: Sentence, longest: float) -> None:
        """Clause edges of a sentence longer than ``longest``, and word gaps of its clauses that are too."""
        if sentence.end - sentence.start <= longest:
            return
        self.around(sentence.clauses, CLAUSE_STRENGTH)
        for clause in sentence.clauses:
            if clause.end - clause.start > longest:
                self.around([Phrase((w,)) for w in clause.words], None)


def _quiet(times: np.ndarray, said: Sequence[Sentence], duration: float, quiet_seconds: float) -> np.ndarray:
    """Mask of times in a stretch between sentences (or before the first, after the last) at least
    ``quiet_seconds`` long: stretches that may hold a clip of their own, cut like a video without speech."""
    if not said:
        return np.ones(times.size, dtype=bool)
    first = np.array([s.start for s in said], dtype=np.float64)
    reach = np.maximum.accumulate(np.array([s.end for s in said], dtype=np.float64))
    pos = np.searchsorted(first, times, side="right") - 1  # the last sentence started by each time
    after = np.where(pos >= 0, reach[np.clip(pos, 0, None)], 0.0)
    before = np.where(pos + 1 < first.size, first[np.clip(pos + 1, 0, first.size - 1)], duration)
    return (times >= after) & (times <= before) & (before - after >= quiet_seconds)


def _points(pairs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        return np.zeros(0), np.zeros(0)
    t, s = zip(*pairs, strict=True)
    return np.array(t, dtype=np.float64), np.array(s, dtype=np.float64)


def _gather(
    spoken: list[tuple[float, float]],
    silent: list[tuple[float, float]],
    said: Sequence[Sentence],
    words: tuple[np.ndarray, np.ndarray],
    duration: float,
    quiet_seconds: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ascending cut times with their strengths: the spoken ones, the silent ones in quiet stretches, and a
    grid where neither reaches; none strictly inside a word."""
    t_silent, s_silent = _points(silent)
    keep = np.isfinite(t_silent) & (t_silent >= 0) & (t_silent <= duration)
    keep[keep] = _quiet(t_silent[keep], said, duration, quiet_seconds)
    t_spoken, s_spoken = _points(spoken)
    t = np.concatenate([t_spoken, t_silent[keep]])
    s = np.concatenate([s_spoken, s_silent[keep]])
    keep = np.isfinite(t) & (t >= 0) & (t <= duration)
    keep[keep] = _outside_words(t[keep], *words)
    t, s = t[keep], s[keep]
    grid = _grid(t, duration)
    grid = grid[_quiet(grid, said, duration, quiet_seconds) & _outside_words(grid, *words)]
    t = np.concatenate([t, grid])
    s = np.concatenate([s, np.full(grid.size, GRID_STRENGTH)])
    # Sort by time, strongest first among equal times, then keep one entry per time.
    order = np.lexsort((-s, t))
    t, s = t[order], s[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = t[1:] != t[:-1]
    return t[first], s[first]


def boundaries(
    transcript: Transcript,
    speech: Sequence[Span],
    shot_cuts: Sequence[float],
    duration: float,
    *,
    longest: float = math.inf,
    quiet_seconds: float = 0.0,
) -> Boundaries:
    """Where clips may start and end.

    With words, clips start and end at sentence edges; a sentence longer than ``longest`` may also be cut
    at its clause edges, and a clause longer than that at the gaps between its words. Silences (voice
    activity edges), shot cuts, the video's edges and, as a last resort, a grid of whole seconds are cut
    points only in stretches without sentences at least ``quiet_seconds`` long, as in a video without words.
    """
    said = sentences(transcript.words)
    spoken = _Points()
    if said:
        spoken.starts.append(
            (said[0].start - min(CUT_PADDING, max(said[0].start, 0.0) / 2), SENTENCE_STRENGTH)
        )
        last = max(s.end for s in said)
        spoken.ends.append((last + min(CUT_PADDING, max(duration - last, 0.0) / 2), SENTENCE_STRENGTH))
    spoken.around(said, SENTENCE_STRENGTH)
    for sentence in said:
        spoken.inside(sentence, longest)

    silent_starts = [(s.start, SILENCE_STRENGTH) for s in speech] + [
        (t, SHOT_CUT_STRENGTH) for t in shot_cuts
    ]
    silent_ends = [(s.end, SILENCE_STRENGTH) for s in speech] + [(t, SHOT_CUT_STRENGTH) for t in shot_cuts]
    silent_starts.append((0.0, VIDEO_EDGE_STRENGTH))
    silent_ends.append((float(duration), VIDEO_EDGE_STRENGTH))

    words = _word_arrays(transcript)
    b_starts, b_start_strength = _gather(spoken.starts, silent_starts, said, words, duration, quiet_seconds)
    b_ends, b_end_strength = _gather(spoken.ends, silent_ends, said, words, duration, quiet_seconds)
    return Boundaries(b_starts, b_start_strength, b_ends, b_end_strength)
