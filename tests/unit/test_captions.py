from __future__ import annotations

import itertools
import re
from html import unescape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.captions import (
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    cues,
    srt_timestamp,
    to_srt,
    to_vtt,
    vtt_timestamp,
)
from domain.media import Word

SRT_TIME = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d),(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d),(\d{3})$")
VTT_TIME = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    out = []
    for number, block in enumerate(filter(None, text.split("\n\n")), start=1):
        index, timing, *lines = block.strip("\n").split("\n")
        assert index == str(number)
        match = SRT_TIME.match(timing)
        assert match, timing
        g = match.groups()
        out.append((_seconds(*g[:4]), _seconds(*g[4:]), "\n".join(lines)))
    return out


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    header, *blocks = text.split("\n\n")
    assert header == "WEBVTT"
    out = []
    for block in filter(None, blocks):
        timing, *lines = block.strip("\n").split("\n")
        match = VTT_TIME.match(timing)
        assert match, timing
        body = "\n".join(lines)
        assert "<" not in body and ">" not in body
        g = match.groups()
        out.append((_seconds(*g[:4]), _seconds(*g[4:]), unescape(body)))
    return out


def talk(*texts: str, start: float = 0.0, step: float = 0.3) -> list[Word]:
    return [Word(t, start + i * step, start + i * step + step * 0.8) for i, t in enumerate(texts)]


def test_timestamp_formats() -> None:
    assert srt_timestamp(62.345) == "00:01:02,345"
    assert vtt_timestamp(62.345) == "00:01:02.345"
    assert srt_timestamp(3 * 3600 + 59 * 60 + 59.9996) == "04:00:00,000"
    assert vtt_timestamp(-1.0) == "00:00:00.000"


def test_srt_and_vtt_for_a_short_phrase() -> None:
    words = talk("hello", "there", start=10.0)
    assert to_srt(words, offset=9.0) == "1\n00:00:01,000 --> 00:00:01,540\nhello there\n"
    assert to_vtt(words, offset=9.0) == "WEBVTT\n\n00:00:01.000 --> 00:00:01.540\nhello there\n"


def test_no_words_gives_empty_files() -> None:
    assert to_srt([]) == ""
    assert parse_vtt(to_vtt([])) == []


def test_pause_starts_a_new_cue() -> None:
    words = [*talk("one", "two"), *talk("three", start=0.54 + 0.61)]
    assert [c.text for c in cues(words)] == ["one two", "three"]
    assert [c.text for c in cues([*talk("one", "two"), *talk("three", start=0.54 + 0.5)])] == [
        "one two three"
    ]


def test_long_speech_is_cut_after_about_three_and_a_half_seconds() -> None:
    words = talk(*(["go"] * 30), step=0.25)
    result = cues(words)
    assert len(result) > 1
    assert all(c.end - c.start <= MAX_CUE_SECONDS + 1e-9 for c in result)


def test_lines_wrap_at_42_characters_and_cues_hold_two_lines() -> None:
    words = talk(*(["abcdefghi"] * 12), step=0.1)  # 4 words fill a line, so 12 words need three lines
    result = cues(words)
    assert [len(c.lines) for c in result] == [2, 1]
    assert all(len(line) <= MAX_LINE_CHARS for c in result for line in c.lines)


def test_times_are_relative_to_the_clip_and_clamped_at_zero() -> None:
    words = [Word("early", 4.0, 5.2), Word("late", 5.3, 5.8)]
    (cue,) = cues(words, offset=5.0)
    assert cue.start == 0.0
    assert cue.end == pytest.approx(0.8)


def test_vtt_escapes_markup_but_srt_keeps_text() -> None:
    words = talk("a<b>", "&", "-->")
    assert "a&lt;b&gt; &amp; --&gt;" in to_vtt(words)
    assert "a<b> & -->" in to_srt(words)


def test_whitespace_inside_words_cannot_break_the_format() -> None:
    words = [Word("two\n\nlines", 0.0, 0.5), Word("  ", 0.5, 0.6), Word("ok", 0.6, 0.9)]
    assert [text for *_, text in parse_srt(to_srt(words))] == ["two lines ok"]


# ---------------------------------------------------------------- properties

word_text = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABC'&<>-.,!? "), min_size=1, max_size=12
)


@st.composite
def timed_words(draw: st.DrawFn) -> tuple[list[Word], float]:
    n = draw(st.integers(0, 40))
    out = []
    for _ in range(n):
        start = draw(st.floats(0, 30, allow_nan=False))  # dense, so words overlap and cues collide
        length = draw(st.floats(0, 2, allow_nan=False))
        out.append(Word(draw(word_text), start, start + length))
    offset = draw(st.floats(0, 10, allow_nan=False))
    return draw(st.permutations(out)), offset


def _tokens(words: list[Word]) -> list[str]:
    return sorted(t for w in words for t in w.text.split())


@given(timed_words())
def test_cues_are_ordered_non_overlapping_and_hold_every_word(case: tuple[list[Word], float]) -> None:
    words, offset = case
    result = cues(words, offset)
    for cue in result:
        assert 0 <= cue.start <= cue.end
        assert 1 <= len(cue.lines) <= MAX_LINES
        for line in cue.lines:
            assert len(line) <= MAX_LINE_CHARS or " " not in line  # only a single over-long word may overflow
    for a, b in itertools.pairwise(result):
        assert a.start <= b.start
        assert a.end <= b.start
    assert sorted(t for c in result for t in c.text.split()) == _tokens(words)


@given(timed_words())
def test_srt_and_vtt_parse_back_to_the_same_cues(case: tuple[list[Word], float]) -> None:
    words, offset = case
    expected = [(round(c.start, 3), round(c.end, 3), c.text) for c in cues(words, offset)]
    for parsed in (parse_srt(to_srt(words, offset)), parse_vtt(to_vtt(words, offset))):
        assert [(round(a, 3), round(b, 3), t) for a, b, t in parsed] == expected
        for (_, end, _), (start, _, _) in itertools.pairwise(parsed):
            assert end <= start


def test_two_line_cues_are_split_evenly() -> None:
    texts = "and then a little crowd started tearing it was".split()
    words = [Word(t, i * 0.2, i * 0.2 + 0.15) for i, t in enumerate(texts)]
    (cue,) = cues(words)
    assert len(cue.lines) == 2
    first, second = (len(line) for line in cue.lines)
    assert abs(first - second) <= max(len(t) for t in texts) + 1
    assert " ".join(cue.lines) == " ".join(texts)
