"""Clip selection: the best-scoring non-overlapping spans that start and end at clean cut points.

Cost is O(B·W) for B cut points and W ends within the length window: cut points are thinned to the
strongest one per second, every start is paired with every end in its window through prefix sums,
only the best end of each start is kept, and a greedy pass picks non-overlapping clips best first.

A video shorter than ``options.min_seconds`` yields no clip: every clip honours the requested bounds,
and the caller can say why nothing came back.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from domain.media import Clip, ClipOptions, Span, Transcript, Word
from domain.text_features import boundaries

BOUNDARY_BONUS = 0.25  # bonus for two perfectly clean cuts, in units of the scores' standard deviation
BUCKET_SECONDS = 1.0  # cut points are thinned to the strongest one per bucket
CHUNK = 1024  # starts scored at once; bounds memory at CHUNK × window
TITLE_CHARS = 60
TITLE_WORDS = 6

# A word list reads better as prose than as 130 quoted literals.
_STOPWORD_TEXT = """
    a about after again all also am an and any are as at be because been before being but by can
    could did do does doing don't down during each even for from get got had has have having he her
    here him his how i i'm if in into is it it's its just know like me more most my no not now of
    off on once one only or other our out over really right say said see she so some than that
    that's the their them then there these they thing things think this those through to too uh um
    up us very was way we well were what when where which while who why will with would yeah yes you
    you're your
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


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


def _candidates(
    scores: np.ndarray,
    starts: tuple[np.ndarray, np.ndarray],
    ends: tuple[np.ndarray, np.ndarray],
    options: ClipOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each start, its best end in [min, max] seconds later: (start, end, value) arrays."""
    s_t, s_w = starts
    e_t, e_w = ends
    spread = float(np.std(scores)) if scores.size else 0.0
    bonus = BOUNDARY_BONUS * (spread if spread > 0 else 1.0) / 2
    f_s, f_e = _integral(scores, s_t), _integral(scores, e_t)
    out_s, out_e, out_v = [], [], []
    eps = 1e-9  # searchsorted only narrows the window; the exact length test below decides
    lo_all = np.searchsorted(e_t, s_t + options.min_seconds - eps, side="left")
    hi_all = np.searchsorted(e_t, s_t + options.max_seconds + eps, side="right")
    for c in range(0, s_t.size, CHUNK):
        lo, hi = lo_all[c : c + CHUNK], hi_all[c : c + CHUNK]
        width = int((hi - lo).max(initial=0))
        if width == 0:
            continue
        idx = np.minimum(lo[:, None] + np.arange(width)[None, :], e_t.size - 1)
        start = s_t[c : c + CHUNK, None]
        length = e_t[idx] - start
        valid = (idx < hi[:, None]) & (length >= options.min_seconds) & (length <= options.max_seconds)
        mean = (f_e[idx] - f_s[c : c + CHUNK, None]) / np.where(valid, length, 1.0)
        value = np.where(valid, mean + bonus * (s_w[c : c + CHUNK, None] + e_w[idx]), -np.inf)
        best = np.argmax(value, axis=1)  # first maximum: the shortest of equally good ends
        rows = np.arange(best.size)
        found = np.isfinite(value[rows, best])
        out_s.append(s_t[c : c + CHUNK][found])
        out_e.append(e_t[idx[rows, best]][found])
        out_v.append(value[rows, best][found])
    if not out_s:
        empty = np.zeros(0)
        return empty, empty, empty
    return np.concatenate(out_s), np.concatenate(out_e), np.concatenate(out_v)


def _pick(
    start: np.ndarray, end: np.ndarray, value: np.ndarray, limit: int
) -> list[tuple[float, float, float]]:
    """Greedy best-first, ties by time; skips candidates overlapping an already chosen clip."""
    chosen: list[tuple[float, float, float]] = []
    for i in np.lexsort((end, start, -value)):
        s, e = float(start[i]), float(end[i])
        if all(e <= cs or s >= ce for cs, ce, _ in chosen):
            chosen.append((s, e, float(value[i])))
            if len(chosen) == limit:
                break
    return chosen


def _tokens(word: Word) -> str:
    # Recognisers add markers like "<sil>", "[noise]" or "word(2)"; keep letters, digits, apostrophes.
    return re.sub(r"\(\d+\)$", "", word.text).strip().lower()


def clip_title(words: Sequence[Word], counts: Mapping[str, int], start: float) -> str:
    """Up to TITLE_WORDS informative words (frequent in the clip, rare in the video), in spoken order."""
    tokens = [re.sub(r"[^\w']", "", _tokens(w)) for w in words]
    # Contractions ("we'll", "don't") are function words too.
    local = Counter(
        t for t in tokens if len(t) > 2 and t not in STOPWORDS and "'" not in t and not t.isdigit()
    )
    if not local:
        minutes, seconds = divmod(int(start), 60)
        hours, minutes = divmod(minutes, 60)
        stamp = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        return f"Highlight at {stamp}"
    first_seen = {t: i for i, t in reversed(list(enumerate(tokens)))}

    def weight(t: str) -> tuple[float, int, int]:
        return (-local[t] * len(t) / max(counts.get(t, 1), 1) ** 0.5, first_seen[t], len(t))

    picked = sorted(sorted(local, key=weight)[:TITLE_WORDS], key=first_seen.__getitem__)
    title = ""
    for t in picked:
        candidate = f"{title} {_capitalised(t)}".strip()
        if len(candidate) > TITLE_CHARS:
            break
        title = candidate
    return title or _capitalised(picked[0])[:TITLE_CHARS]


def _capitalised(token: str) -> str:
    # str.title() would give "Don'T"; only the first letter changes.
    return token[:1].upper() + token[1:]


def select_clips(
    scores: np.ndarray,
    transcript: Transcript,
    *,
    options: ClipOptions = ClipOptions(),  # noqa: B008 - ClipOptions is frozen, sharing the default is safe
    duration: float | None = None,
    shot_cuts: Sequence[float] = (),
    speech: Sequence[Span] = (),
) -> list[Clip]:
    """Up to ``options.max_clips`` non-overlapping clips, best first, cut only at clean boundaries."""
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64).ravel(), nan=0.0, posinf=0.0, neginf=0.0)
    total = float(scores.size if duration is None else duration)
    if total < options.min_seconds or scores.size == 0:
        return []
    cuts = boundaries(transcript, speech, shot_cuts, total)
    start, end, value = _candidates(
        scores,
        _thin(cuts.starts, cuts.start_strength),
        _thin(cuts.ends, cuts.end_strength),
        options,
    )
    counts = Counter(re.sub(r"[^\w']", "", _tokens(w)) for w in transcript.words)
    word_starts = np.array([w.start for w in transcript.words], dtype=np.float64)
    word_ends = np.array([w.end for w in transcript.words], dtype=np.float64)
    clips = []
    for rank, (s, e, v) in enumerate(_pick(start, end, value, options.max_clips), start=1):
        span = Span(s, e)
        # Same rule as Transcript.between, vectorised: long transcripts have tens of thousands of words.
        inside = np.flatnonzero((word_starts >= s) & (word_ends <= e))
        words = tuple(transcript.words[i] for i in inside)
        clips.append(Clip(span=span, score=v, rank=rank, words=words, title=clip_title(words, counts, s)))
    return clips
