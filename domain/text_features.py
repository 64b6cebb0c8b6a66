"""Per-second features and cut points derived from a transcript's word timings.

Pocketsphinx gives no punctuation, so a sentence end is read from timing alone: a word followed
by a pause of at least ``SENTENCE_PAUSE`` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from domain.media import Span, Transcript

SENTENCE_PAUSE = 0.5  # seconds of silence after a word that close a sentence
CUT_PADDING = 0.25  # seconds of breathing room kept around speech at a cut, at most half the gap

# How clean a cut is, 0..1; selection rewards clean starts and ends with a small bonus.
SENTENCE_STRENGTH = 1.0
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
    if speech_ends.size:
        following = np.append(speech_starts[1:], float(seconds))
        closes = (following - speech_ends >= SENTENCE_PAUSE) & (speech_ends < seconds)
        out[np.floor(speech_ends[closes]).astype(np.int64), 2] = 1.0
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


def _finish(
    times: list[np.ndarray],
    strengths: list[np.ndarray],
    starts: np.ndarray,
    ends: np.ndarray,
    duration: float,
) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate(times)
    s = np.concatenate(strengths)
    keep = (t >= 0) & (t <= duration) & np.isfinite(t)
    keep[keep] = _outside_words(t[keep], starts, ends)
    t, s = t[keep], s[keep]
    grid = _grid(t, duration)
    grid = grid[_outside_words(grid, starts, ends)]
    t = np.concatenate([t, grid])
    s = np.concatenate([s, np.full(grid.size, GRID_STRENGTH)])
    # Sort by time, strongest first among equal times, then keep one entry per time.
    order = np.lexsort((-s, t))
    t, s = t[order], s[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = t[1:] != t[:-1]
    return t[first], s[first]


def boundaries(
    transcript: Transcript, speech: Sequence[Span], shot_cuts: Sequence[float], duration: float
) -> Boundaries:
    """Candidate clip starts and ends: sentence edges, silences, shot cuts, the video's edges, else a grid."""
    starts, ends = _word_arrays(transcript)
    w_starts, w_ends = _merge(starts, ends)
    gaps = np.append(w_starts[1:], duration) - w_ends  # silence after each stretch of speech
    gaps_before = w_starts - np.insert(w_ends[:-1], 0, 0.0)
    # Short gaps between words are valid but weak cuts (mid-sentence); long ones end a sentence.
    after = np.where(gaps >= SENTENCE_PAUSE, SENTENCE_STRENGTH, np.clip(gaps / SENTENCE_PAUSE, 0, 1) * 0.5)
    before = np.where(
        gaps_before >= SENTENCE_PAUSE, SENTENCE_STRENGTH, np.clip(gaps_before / SENTENCE_PAUSE, 0, 1) * 0.5
    )
    if before.size:
        before[0] = SENTENCE_STRENGTH  # the first word starts a sentence whatever came before
    end_at = w_ends + np.minimum(CUT_PADDING, np.clip(gaps, 0, None) / 2)
    start_at = w_starts - np.minimum(CUT_PADDING, np.clip(gaps_before, 0, None) / 2)
    vad_starts = np.array([s.start for s in speech], dtype=np.float64)
    vad_ends = np.array([s.end for s in speech], dtype=np.float64)
    cuts = np.array(list(shot_cuts), dtype=np.float64)
    edges = np.array([0.0, float(duration)])
    edge_strength = np.full(2, VIDEO_EDGE_STRENGTH)

    def strength(values: np.ndarray, value: float) -> np.ndarray:
        return np.full(values.size, value)

    b_starts, b_start_strength = _finish(
        [start_at, vad_starts, cuts, edges[:1]],
        [
            before,
            strength(vad_starts, SILENCE_STRENGTH),
            strength(cuts, SHOT_CUT_STRENGTH),
            edge_strength[:1],
        ],
        starts,
        ends,
        duration,
    )
    b_ends, b_end_strength = _finish(
        [end_at, vad_ends, cuts, edges[1:]],
        [after, strength(vad_ends, SILENCE_STRENGTH), strength(cuts, SHOT_CUT_STRENGTH), edge_strength[1:]],
        starts,
        ends,
        duration,
    )
    return Boundaries(b_starts, b_start_strength, b_ends, b_end_strength)
