"""Caption cues from timed words, written as SubRip (.srt) or WebVTT (.vtt), with times relative to a clip."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.media import Word

MAX_LINE_CHARS = 42  # the common broadcast/Netflix reading limit per caption line
MAX_LINES = 2
MAX_CUE_SECONDS = 3.5
PAUSE_SECONDS = 0.6  # a silence this long reads as the end of a phrase


@attrs.frozen
class Cue:
    """One caption on screen: from ``start`` to ``end`` seconds into the clip, one or two lines."""

    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _clean(text: str) -> str:
    # A newline or blank line inside a word would end the cue early in both formats.
    return " ".join(text.split())


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
    """Like ``_wrap``, but two lines are split where they come out most even ("a b c d / e" reads worse
    than "a b c / d e"), still within the line limit."""
    lines = _wrap(words)
    if len(lines) != 2:
        return lines
    splits = [(" ".join(words[:k]), " ".join(words[k:])) for k in range(1, len(words))]
    fitting = [pair for pair in splits if max(len(pair[0]), len(pair[1])) <= MAX_LINE_CHARS]
    first, second = min(fitting, key=lambda pair: (max(len(pair[0]), len(pair[1])), -len(pair[0])))
    return [first, second]


def cues(words: Sequence[Word], offset: float = 0.0) -> tuple[Cue, ...]:
    """Group words into cues: a new cue after a pause, after ~3.5 s, or when two lines are full."""
    timed = sorted(
        (w for w in words if _clean(w.text)),
        key=lambda w: (w.start, w.end),
    )
    groups: list[list[Word]] = []
    for word in timed:
        if groups:
            group = groups[-1]
            pause = word.start - max(w.end for w in group)
            too_long = word.end - group[0].start > MAX_CUE_SECONDS
            too_wide = len(_wrap([_clean(w.text) for w in [*group, word]])) > MAX_LINES
            if not (pause > PAUSE_SECONDS or too_long or too_wide):
                group.append(word)
                continue
        groups.append([word])

    starts = [max(0.0, g[0].start - offset) for g in groups]
    result = []
    for i, group in enumerate(groups):
        end = max(starts[i], max(w.end for w in group) - offset)
        if i + 1 < len(groups):
            end = min(end, starts[i + 1])  # overlapping words must not make cues overlap
        result.append(Cue(starts[i], end, tuple(_balanced([_clean(w.text) for w in group]))))
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
