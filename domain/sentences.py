"""Sentences and clauses of a transcript, the units that clips, titles and captions are cut on.

In a punctuated transcript, a word ending in ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets
aside) ends a sentence, and so does a silence of ``LONG_PAUSE`` where the speaker trailed off
unpunctuated; commas, semicolons, colons, dashes and pauses of ``SENTENCE_PAUSE`` end clauses. A
transcript with no punctuation at all (an engine that gives none) falls back on timing: a pause of
``SENTENCE_PAUSE`` ends a sentence and one of ``CLAUSE_PAUSE`` a clause.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from domain.media import Word

SENTENCE_PAUSE = 0.5  # seconds of silence that end a sentence in unpunctuated speech, a clause otherwise
CLAUSE_PAUSE = 0.25  # seconds of silence that end a clause in unpunctuated speech
LONG_PAUSE = 2.0  # seconds of silence that end a sentence whatever the punctuation says

TERMINALS = (".", "!", "?", "…")
CLAUSE_MARKS = (",", ";", ":", "—", "–", "--")
CLOSERS = "\"'”’»)]}"
# A period after these ends an abbreviation, not a sentence.
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e"})


class Break(enum.IntEnum):
    """What the gap after a word closes."""

    NONE = 0
    CLAUSE = 1
    SENTENCE = 2


@attrs.frozen
class Phrase:
    """Words spoken as one unit, a sentence or a clause, in time order."""

    words: tuple[Word, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return max(w.end for w in self.words)

    @property
    def text(self) -> str:
        return " ".join(t for w in self.words if (t := clean(w.text)))


@attrs.frozen
class Sentence(Phrase):
    clauses: tuple[Phrase, ...] = ()


def clean(text: str) -> str:
    """One line, single-spaced: a newline inside a word must not break a caption or a title."""
    return " ".join(text.split())


def _bare(text: str) -> str:
    return clean(text).rstrip(CLOSERS)


def ends_sentence(text: str) -> bool:
    """``text`` closes a sentence by its punctuation ("world." "Really?" 'said "no."'), not "Mr." or "J."."""
    bare = _bare(text)
    if not bare.endswith(TERMINALS):
        return False
    if bare.endswith("."):
        stem = bare[:-1].lstrip("\"'“‘«([{")
        initial = len(stem) == 1 and stem.isupper() and stem != "I"  # "John F. Kennedy", but "So do I."
        if stem.lower() in ABBREVIATIONS or initial:
            return False
    return True


def ends_clause(text: str) -> bool:
    return _bare(text).endswith(CLAUSE_MARKS)


def in_order(words: Sequence[Word]) -> list[Word]:
    return sorted(words, key=lambda w: (w.start, w.end))


def punctuated(words: Sequence[Word]) -> bool:
    return any(ends_sentence(w.text) or ends_clause(w.text) for w in words)


def breaks(words: Sequence[Word]) -> list[Break]:
    """What the gap after each word closes; ``words`` in time order. The last word ends a sentence."""
    marked = punctuated(words)
    sentence_pause = LONG_PAUSE if marked else SENTENCE_PAUSE
    clause_pause = SENTENCE_PAUSE if marked else CLAUSE_PAUSE
    out = []
    reach = float("-inf")
    for i, word in enumerate(words):
        reach = max(reach, word.end)
        pause = words[i + 1].start - reach if i + 1 < len(words) else float("inf")
        if pause >= sentence_pause or (marked and ends_sentence(word.text)):
            out.append(Break.SENTENCE)
        elif pause >= clause_pause or (marked and ends_clause(word.text)):
            out.append(Break.CLAUSE)
        else:
            out.append(Break.NONE)
    return out


def sentences(words: Sequence[Word]) -> tuple[Sentence, ...]:
    """The transcript's sentences in time order, each with its clauses (a sentence is one clause or more)."""
    ordered = in_order(words)
    result: list[Sentence] = []
    clauses: list[Phrase] = []
    current: list[Word] = []
    sentence_start = 0
    for i, (word, after) in enumerate(zip(ordered, breaks(ordered), strict=True)):
        current.append(word)
        if after >= Break.CLAUSE:
            clauses.append(Phrase(tuple(current)))
            current = []
        if after == Break.SENTENCE:
            result.append(Sentence(tuple(ordered[sentence_start : i + 1]), tuple(clauses)))
            clauses = []
            sentence_start = i + 1
    return tuple(result)
