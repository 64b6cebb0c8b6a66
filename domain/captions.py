"""Caption cues from timed words, written as SubRip (.srt) or WebVTT (.vtt), with times relative to a clip.

Words are grouped into cues of at most ``MAX_LINES`` lines of ``MAX_LINE_CHARS``, spoken within
``MAX_CUE_SECONDS``, by the cheapest split of the whole text (dynamic programming over break points):

- every cue costs ``CUE_COST``, so cues hold whole clauses rather than one each;
- a cue that ends where a sentence ends costs nothing more, at a clause end ``CLAUSE_COST``, mid-phrase
  ``MID_COST``, less for a pause, down to ``PAUSE_COST`` for one of ``CLAUSE_PAUSE`` (or longer), which
  still ends no clause where the speech is punctuated; one that holds a sentence end costs ``JOIN_COST``;
- a cue on screen for less than ``MIN_CUE_SECONDS`` (until the next cue starts) costs ``SHORT_COST``.

A cue shows from its first word until its last word ends, and for at least ``MIN_CUE_SECONDS`` when the
next cue leaves room; it never overlaps the next cue nor lasts beyond ``MAX_CUE_SECONDS``. The text is
as transcribed: cased and punctuated by the speech engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.media import Word
from domain.sentences import CLAUSE_PAUSE, Break, breaks, clean, ends_clause, ends_sentence, in_order

MAX_LINE_CHARS = 42  # the common broadcast/Netflix reading limit per caption line
MAX_LINES = 2
MIN_CUE_SECONDS = 0.8
MAX_CUE_SECONDS = 6.0

CUE_COST = 1.0
CLAUSE_COST = 0.5
PAUSE_COST = 1.5
MID_COST = 3.0
JOIN_COST = 4.0
SHORT_COST = 20.0
LINE_BREAK_CHARS = 6  # evenness, in characters, given up to break a line after a clause (twice: a sentence)


@attrs.frozen
class Cue:
    """One caption on screen: from ``start`` to ``end`` seconds into the clip, one or two lines, and the
    words it shows with their times in the clip (for highlighting the word being spoken)."""

    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[Word, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _wrap(words: Sequence[str]) -> list[str]:
    """Greedy line filling; a word longer than a line gets a line of its own rather than being split."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= MAX_LINE_CHARS:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _balanced(words: Sequence[str]) -> list[str]:
    """Like ``_wrap``, but two lines are split where they read best: as even as they come ("a b c d / e"
    reads worse than "a b c / d e"), after a sentence or clause end when that costs little evenness
    (``LINE_BREAK_CHARS``), still within the line limit."""
    lines = _wrap(words)
    if len(lines) != 2:
        return lines
    best: tuple[float, list[str]] | None = None
    for k in range(1, len(words)):
        first, second = " ".join(words[:k]), " ".join(words[k:])
        longest = max(len(first), len(second))
        if longest > MAX_LINE_CHARS:
            continue
        mark = words[k - 1]
        bonus = LINE_BREAK_CHARS * (2 if ends_sentence(mark) else 1 if ends_clause(mark) else 0)
        if best is None or longest - bonus < best[0]:
            best = (longest - bonus, [first, second])
    return lines if best is None else best[1]  # a word longer than a line keeps the line it was given


def _end_cost(after: Break, pause: float) -> float:
    if after == Break.SENTENCE:
        return 0.0
    if after == Break.CLAUSE:
        return CLAUSE_COST
    return MID_COST - (MID_COST - PAUSE_COST) * min(max(pause, 0.0) / CLAUSE_PAUSE, 1.0)


def _groups(words: list[Word]) -> list[list[Word]]:
    """The cheapest split of ``words`` (in time order) into cues, by the rules in the module docstring."""
    n = len(words)
    after = breaks(words)
    texts = [clean(w.text) for w in words]
    reach = [0.0] * n  # latest end among words[: i + 1]
    for i, word in enumerate(words):
        reach[i] = max(word.end, reach[i - 1] if i else word.end)
    pause = [words[i + 1].start - reach[i] if i + 1 < n else 0.0 for i in range(n)]
    end_cost = [CUE_COST + _end_cost(a, p) for a, p in zip(after, pause, strict=True)]
    shown_until = [w.start for w in words[1:]] + [float("inf")]
    best = [0.0] + [float("inf")] * n  # best[i]: cheapest split of words[:i]
    back = [0] * (n + 1)
    for i in range(n):
        if best[i] == float("inf"):
            continue
        lines = 0  # the greedy wrap of _wrap, counted: lines so far and the last one's length
        last = 0
        joins = 0
        cue_reach = words[i].end
        for j in range(i, n):
            size = len(texts[j])
            if lines and last + 1 + size <= MAX_LINE_CHARS:
                last += 1 + size
            else:
                lines, last = lines + 1, size
            if words[j].end > cue_reach:
                cue_reach = words[j].end
            too_big = lines > MAX_LINES or cue_reach - words[i].start > MAX_CUE_SECONDS
            if j > i and too_big:
                break
            cost = end_cost[j] + JOIN_COST * joins
            if shown_until[j] - words[i].start < MIN_CUE_SECONDS:
                cost += SHORT_COST
            if best[i] + cost < best[j + 1]:
                best[j + 1] = best[i] + cost
                back[j + 1] = i
            joins += after[j] == Break.SENTENCE
            if too_big:
                break  # a single word too long for a cue gets one of its own
    groups = []
    j = n
    while j > 0:
        groups.append(words[back[j] : j])
        j = back[j]
    return groups[::-1]


def _shifted(word: Word, text: str, offset: float) -> Word:
    return Word(text, max(0.0, word.start - offset), max(0.0, word.end - offset), word.confidence)


def cues(words: Sequence[Word], offset: float = 0.0) -> tuple[Cue, ...]:
    """The captions for ``words``, times measured from ``offset`` (the clip's start in the source)."""
    timed = in_order([w for w in words if clean(w.text)])
    groups = _groups(timed)
    starts = [max(0.0, g[0].start - offset) for g in groups]
    result = []
    for i, group in enumerate(groups):
        spoken = max(starts[i], max(w.end for w in group) - offset)
        end = min(max(spoken, starts[i] + MIN_CUE_SECONDS), starts[i] + MAX_CUE_SECONDS)
        if i + 1 < len(groups):
            end = min(end, starts[i + 1])  # overlapping words must not make cues overlap
        texts = [clean(w.text) for w in group]
        shown = tuple(_shifted(w, t, offset) for w, t in zip(group, texts, strict=True))
        result.append(Cue(starts[i], end, tuple(_balanced(texts)), shown))
    return tuple(result)


def _milliseconds(seconds: float) -> tuple[int, int, int, int]:
    total = max(0, round(seconds * 1000))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return hours, minutes, secs, millis


def srt_timestamp(seconds: float) -> str:
    h, m, s, ms = _milliseconds(seconds)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def vtt_timestamp(seconds: float) -> str:
    h, m, s, ms = _milliseconds(seconds)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(words: Sequence[Word], offset: float = 0.0) -> str:
    """SubRip text for ``words``, times measured from ``offset`` (the clip's start in the source)."""
    blocks = [
        f"{i}\n{srt_timestamp(cue.start)} --> {srt_timestamp(cue.end)}\n{cue.text}\n"
        for i, cue in enumerate(cues(words, offset), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(words: Sequence[Word], offset: float = 0.0) -> str:
    """WebVTT text for ``words``, times measured from ``offset``; ``&``, ``<`` and ``>`` are escaped."""
    blocks = [
        f"{vtt_timestamp(cue.start)} --> {vtt_timestamp(cue.end)}\n{_vtt_escape(cue.text)}\n"
        for cue in cues(words, offset)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
