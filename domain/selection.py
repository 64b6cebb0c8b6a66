"""Clip selection: the best well-spread spans that start and end at clean cut points, titled by their hook.

Where to cut. With speech, clips start at the start of a sentence and end at the end of one; only a
sentence longer than a clip may be cut inside, at a clause edge or a pause (domain.text_features).

Ranking. A span is worth the total, over its seconds, of the score's excess over a baseline, plus a
small bonus for clean cuts. The baseline is what the video offers everywhere: its median score plus half
its typical spread (1.4826 × the median absolute deviation, the standard deviation of normal noise). A
second that stands out adds and an ordinary one costs, so a strong passage is taken whole when the
length allows, padding it with ordinary material or noise never pays, and nothing pulls clips towards
the minimum length the way a mean score does.

Spread. Clips are picked best first, and while the video offers anything else no pick comes closer than
``options.gap_seconds`` (one clip's end to the other's start) to an earlier one. When that leaves fewer
clips than asked, the gap is halved step by step down to plain non-overlap, so filler clips stay as far
apart as the video allows. Clips are ranked by value.

Cost is O(B·W) for B cut points and W ends within the length window: cut points are thinned to the
strongest one per second, every start is paired with every end in its window through prefix sums and
keeps its best end; a pick re-scores only the starts whose best span reaches into the zone it closes,
with their ends capped before it.

Titles. A clip's title is its hook: of the complete sentences inside it, those of at least
``HOOK_MIN_WORDS`` words (any, if none has that many), the one with the highest mean score, the earlier
on ties; a clip that holds no complete sentence takes its best complete clause the same way, else its
words. The text is the speaker's, as transcribed, with a capital first letter, cut at a word boundary
with "…" to ``TITLE_CHARS``. A clip without words is titled by its time.

A video shorter than ``options.min_seconds`` yields no clip: every clip honours the requested bounds,
and the caller can say why nothing came back.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from domain.media import Clip, ClipOptions, Span, Transcript
from domain.sentences import Phrase, Sentence, clean, sentences
from domain.text_features import CUT_PADDING, boundaries

BASELINE_SPREADS = 0.5  # the baseline's distance above the median, in robust standard deviations
BOUNDARY_BONUS = 1.0  # two perfectly clean cuts: worth one second one standard deviation above the median
BUCKET_SECONDS = 1.0  # cut points are thinned to the strongest one per bucket
CHUNK = 1024  # starts scored at once; bounds memory at CHUNK × window
GAP_HALVINGS = 3  # the fill halves the gap this many times before allowing clips to touch
TITLE_CHARS = 60
HOOK_MIN_WORDS = 3
ELLIPSIS = "…"


def _thin(times: np.ndarray, strength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strongest cut point per bucket (earliest on ties), so the window holds few ends per start."""
    if times.size == 0:
        return times, strength
    bucket = np.floor(times / BUCKET_SECONDS)
    order = np.lexsort((times, -strength, bucket))
    first = np.ones(order.size, dtype=bool)
    first[1:] = bucket[order][1:] != bucket[order][:-1]
    keep = np.sort(order[first])
    return times[keep], strength[keep]


def _integral(scores: np.ndarray, times: np.ndarray) -> np.ndarray:
    """∫₀ᵗ score: scores are constant over each second, so the prefix sum is piecewise linear."""
    prefix = np.concatenate([[0.0], np.cumsum(scores, dtype=np.float64)])
    return np.interp(times, np.arange(prefix.size, dtype=np.float64), prefix)


@attrs.frozen(eq=False)
class _Windows:
    """Cut points with the excess score integrated up to each, and each start's window of ends."""

    starts: np.ndarray
    start_strength: np.ndarray
    ends: np.ndarray
    end_strength: np.ndarray
    at_start: np.ndarray  # ∫ excess up to each start
    at_end: np.ndarray
    first: np.ndarray  # index of the first end at least min_seconds after each start
    stop: np.ndarray  # one past the last end at most max_seconds after each start
    bonus: float
    options: ClipOptions

    @classmethod
    def build(
        cls,
        excess: np.ndarray,
        spread: float,
        starts: tuple[np.ndarray, np.ndarray],
        ends: tuple[np.ndarray, np.ndarray],
        options: ClipOptions,
    ) -> _Windows:
        eps = 1e-9  # searchsorted only narrows the window; the exact length test in best() decides
        return cls(
            starts[0],
            starts[1],
            ends[0],
            ends[1],
            _integral(excess, starts[0]),
            _integral(excess, ends[0]),
            np.searchsorted(ends[0], starts[0] + options.min_seconds - eps, side="left"),
            np.searchsorted(ends[0], starts[0] + options.max_seconds + eps, side="right"),
            BOUNDARY_BONUS * (spread if spread > 0 else 1.0) / 2,
            options,
        )

    def best(self, rows: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the starts ``rows``, the best end in [min, max] seconds later and not after ``limit``:
        (end index, value), value -inf where there is none. On ties the shortest span wins."""
        out_end = np.zeros(rows.size, dtype=np.int64)
        out_value = np.full(rows.size, -np.inf)
        for c in range(0, rows.size, CHUNK):
            row = rows[c : c + CHUNK]
            lo, hi = self.first[row], self.stop[row]
            width = int((hi - lo).max(initial=0))
            if width == 0:
                continue
            idx = np.minimum(lo[:, None] + np.arange(width)[None, :], self.ends.size - 1)
            end = self.ends[idx]
            length = end - self.starts[row, None]
            valid = (
                (idx < hi[:, None])
                & (length >= self.options.min_seconds)
                & (length <= self.options.max_seconds)
                & (end <= limit[c : c + CHUNK, None])
            )
            gain = self.at_end[idx] - self.at_start[row, None]
            clean_cuts = self.bonus * (self.start_strength[row, None] + self.end_strength[idx])
            value = np.where(valid, gain + clean_cuts, -np.inf)
            best = np.argmax(value, axis=1)  # first maximum: the shortest of equally good ends
            picked = np.arange(best.size)
            out_end[c : c + CHUNK] = idx[picked, best]
            out_value[c : c + CHUNK] = value[picked, best]
        return out_end, out_value


def _pick(windows: _Windows, count: int, gap: float) -> list[tuple[float, float, float]]:
    """Best first, each pick at least the current gap from the earlier ones; the gap shrinks only when
    nothing else is left. (start, end, value) in the order picked."""
    chosen: list[tuple[float, float, float]] = []
    starts, ends = windows.starts, windows.ends
    levels = [gap / 2**k for k in range(GAP_HALVINGS + 1)] + [0.0] if gap > 0 else [0.0]
    for level in levels:
        if len(chosen) == count:
            break
        zones = [(s - level, e + level) for s, e, _ in chosen]
        alive = np.ones(starts.size, dtype=bool)
        limit = np.full(starts.size, np.inf)
        for z0, z1 in zones:
            alive &= (starts < z0) | (starts >= z1)
            limit = np.where(starts < z0, np.minimum(limit, z0), limit)
        end = np.zeros(starts.size, dtype=np.int64)
        value = np.full(starts.size, -np.inf)
        rows = np.flatnonzero(alive)
        end[rows], value[rows] = windows.best(rows, limit[rows])
        while len(chosen) < count:
            open_ = np.flatnonzero(np.isfinite(value))
            if open_.size == 0:
                break
            span_start, span_end = starts[open_], ends[end[open_]]
            i = open_[np.lexsort((span_start, span_end - span_start, -value[open_]))[0]]
            s, e = float(starts[i]), float(ends[end[i]])
            chosen.append((s, e, float(value[i])))
            z0, z1 = s - level, e + level
            value[(starts >= z0) & (starts < z1)] = -np.inf
            redo = np.flatnonzero(np.isfinite(value) & (starts < z0) & (ends[end] > z0))
            limit[redo] = np.minimum(limit[redo], z0)
            end[redo], value[redo] = windows.best(redo, limit[redo])
    return chosen


def _baseline(scores: np.ndarray) -> float:
    median = float(np.median(scores))
    spread = 1.4826 * float(np.median(np.abs(scores - median)))
    return median + BASELINE_SPREADS * spread


def _mean_score(phrase: Phrase, scores: np.ndarray) -> float:
    start, end = phrase.start, phrase.end
    if end <= start:
        return float(scores[int(np.clip(np.floor(start), 0, scores.size - 1))])
    f = _integral(scores, np.array([start, end]))
    return float(f[1] - f[0]) / (end - start)


def _shorten(text: str) -> str:
    """``text`` cut at a word boundary to TITLE_CHARS, ellipsis included, dropping a dangling comma."""
    if len(text) <= TITLE_CHARS:
        return text
    kept = ""
    for word in text.split(" "):
        longer = f"{kept} {word}" if kept else word
        if len(longer.rstrip(",;:—–")) + len(ELLIPSIS) > TITLE_CHARS:
            break
        kept = longer
    if not kept:
        return text[: TITLE_CHARS - len(ELLIPSIS)] + ELLIPSIS
    return kept.rstrip(",;:—–") + ELLIPSIS


def _time_title(start: float) -> str:
    minutes, seconds = divmod(int(start), 60)
    hours, minutes = divmod(minutes, 60)
    stamp = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"Highlight at {stamp}"


def clip_title(said: Sequence[Sentence], span: Span, scores: np.ndarray) -> str:
    """The clip's hook (see the module docstring); ``said`` holds at least the sentences that overlap it."""
    within = [s for s in said if s.start >= span.start and s.end <= span.end]
    clauses = [c for s in said for c in s.clauses if c.start >= span.start and c.end <= span.end]
    words = tuple(w for s in said for w in s.words if w.start >= span.start and w.end <= span.end)
    long_enough = [s for s in within if len(s.text.split()) >= HOOK_MIN_WORDS]
    units: Sequence[Phrase] = long_enough or within or clauses or ([Phrase(words)] if words else [])
    units = [u for u in units if u.text]
    if not units or scores.size == 0:
        return _time_title(span.start)
    # Rounded, so that float noise in equal means cannot outvote the earlier sentence.
    hook = max(units, key=lambda u: (round(_mean_score(u, scores), 9), -u.start))
    text = hook.text
    if text[:1].islower() and text.split(" ")[0].islower():
        text = text[:1].upper() + text[1:]
    return _shorten(clean(text))


def select_clips(
    scores: np.ndarray,
    transcript: Transcript,
    *,
    options: ClipOptions = ClipOptions(),  # noqa: B008 - ClipOptions is frozen, sharing the default is safe
    duration: float | None = None,
    shot_cuts: Sequence[float] = (),
    speech: Sequence[Span] = (),
) -> list[Clip]:
    """Up to ``options.max_clips`` clips, best first, cut only at clean boundaries (see the module)."""
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64).ravel(), nan=0.0, posinf=0.0, neginf=0.0)
    total = float(scores.size if duration is None else duration)
    if total < options.min_seconds or scores.size == 0:
        return []
    cuts = boundaries(
        transcript,
        speech,
        shot_cuts,
        total,
        longest=options.max_seconds - 2 * CUT_PADDING,
        quiet_seconds=options.min_seconds,
    )
    windows = _Windows.build(
        scores - _baseline(scores),
        float(np.std(scores)),
        _thin(cuts.starts, cuts.start_strength),
        _thin(cuts.ends, cuts.end_strength),
        options,
    )
    picked = _pick(windows, options.max_clips, options.gap_seconds)
    said = sentences(transcript.words)
    said_starts = np.array([s.start for s in said], dtype=np.float64)
    said_reach = np.maximum.accumulate(np.array([s.end for s in said], dtype=np.float64))
    word_starts = np.array([w.start for w in transcript.words], dtype=np.float64)
    word_ends = np.array([w.end for w in transcript.words], dtype=np.float64)
    clips = []
    for rank, (s, e, v) in enumerate(sorted(picked, key=lambda p: (-p[2], p[0])), start=1):
        span = Span(s, e)
        # Same rule as Transcript.between, vectorised: long transcripts have tens of thousands of words.
        inside = np.flatnonzero((word_starts >= s) & (word_ends <= e))
        words = tuple(transcript.words[i] for i in inside)
        # The sentences that overlap the span: from the first still running at its start to the last begun.
        first = int(np.searchsorted(said_reach, s, side="right"))
        last = int(np.searchsorted(said_starts, e, side="left"))
        title = clip_title(said[first:last], span, scores)
        clips.append(Clip(span=span, score=v, rank=rank, words=words, title=title))
    return clips
