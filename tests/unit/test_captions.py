from __future__ import annotations

import itertools
import re
from html import unescape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.captions import (
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    MIN_CUE_SECONDS,
    Cue,
    cues,
    srt_timestamp,
    to_srt,
    to_vtt,
    vtt_timestamp,
)
from domain.media import Word
from domain.sentences import CLAUSE_PAUSE, SENTENCE_PAUSE

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
    words = talk("Hello", "there.", start=10.0)
    # Spoken for 0.54 s, shown for the minimum 0.8 s.
    assert to_srt(words, offset=9.0) == "1\n00:00:01,000 --> 00:00:01,800\nHello there.\n"
    assert to_vtt(words, offset=9.0) == "WEBVTT\n\n00:00:01.000 --> 00:00:01.800\nHello there.\n"


def test_no_words_gives_empty_files() -> None:
    assert to_srt([]) == ""
    assert parse_vtt(to_vtt([])) == []


def test_in_unpunctuated_speech_a_sentence_pause_starts_a_new_cue() -> None:
    words = [*talk("one", "two"), *talk("three", start=0.54 + SENTENCE_PAUSE)]
    assert [c.text for c in cues(words)] == ["one two", "three"]
    words = [*talk("one", "two"), *talk("three", start=0.54 + CLAUSE_PAUSE)]
    assert [c.text for c in cues(words)] == ["one two three"]  # a clause: a cue holds several


def test_cues_break_at_sentence_ends() -> None:
    words = talk(*"Hello, world. How are you? I am fine, thanks.".split(), step=0.45)
    assert [c.text for c in cues(words)] == ["Hello, world.", "How are you?", "I am fine, thanks."]


def test_a_sentence_too_long_for_one_cue_breaks_at_a_clause() -> None:
    text = "When the comet finally came around the sun, everybody in the town went up onto the hill to watch."
    result = cues(talk(*text.split(), step=0.3))
    assert [c.text.replace("\n", " ") for c in result] == [
        "When the comet finally came around the sun,",
        "everybody in the town went up onto the hill to watch.",
    ]
    assert result[1].lines == ("everybody in the town went", "up onto the hill to watch.")


def test_without_a_clause_a_long_sentence_breaks_at_its_longest_pause() -> None:
    text = "we looked up at the sky for a very long time and then all of a sudden it was there right above us"
    words = talk(*text.split(), step=0.25)
    late = [Word(w.text, w.start + 0.2, w.end + 0.2) for w in words[11:]]  # a 0.25 s pause before "and"
    result = cues(words[:11] + late)
    assert result[0].text.replace("\n", " ") == "we looked up at the sky for a very long time"


def test_a_very_short_sentence_shares_a_cue_rather_than_flash_by() -> None:
    words = talk(*"No. I do not think that is what happened here.".split(), step=0.3)
    assert [c.text.replace("\n", " ") for c in cues(words)] == [
        "No. I do not think that is what happened here."
    ]


def test_long_speech_is_cut_into_cues_of_at_most_six_seconds() -> None:
    words = talk(*(["go"] * 50), step=0.25)  # 12.5 s without a pause
    result = cues(words)
    assert len(result) == 3
    assert all(c.end - c.start <= 6.0 + 1e-9 for c in result)
    assert max(c.end - c.start for c in result) > 5.0  # cues use the time they may have


def test_lines_wrap_at_42_characters_and_cues_hold_two_lines() -> None:
    words = talk(*(["abcdefghi"] * 12), step=0.1)  # 4 words fill a line, so 12 words need three lines
    result = cues(words)
    assert [len(c.lines) for c in result] == [2, 1]
    assert all(len(line) <= MAX_LINE_CHARS for c in result for line in c.lines)


def test_times_are_relative_to_the_clip_and_clamped_at_zero() -> None:
    words = [Word("early", 4.0, 5.2, 0.9), Word("late", 5.3, 5.8)]
    (cue,) = cues(words, offset=5.0)
    assert cue.start == 0.0
    assert cue.end == pytest.approx(0.8)
    assert [(w.text, w.start, w.end, w.confidence) for w in cue.words] == [
        ("early", 0.0, pytest.approx(0.2), 0.9),
        ("late", pytest.approx(0.3), pytest.approx(0.8), 1.0),
    ]


def test_cue_words_carry_clip_times_for_highlighting() -> None:
    words = talk(*"Look up. There it is, the comet!".split(), start=20.0, step=0.4)
    result = cues(words, offset=19.5)
    assert [" ".join(w.text for w in c.words) for c in result] == ["Look up.", "There it is, the comet!"]
    for cue in result:
        assert cue.words[0].start == pytest.approx(cue.start)
        assert all(cue.start <= w.start < w.end <= cue.end for w in cue.words)
    there = result[1].words[0]
    assert (there.text, there.start, there.end) == ("There", pytest.approx(1.3), pytest.approx(1.62))
    assert Cue(0.0, 1.0, ("hi",)).words == ()


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
        assert 0 <= cue.start <= cue.end <= cue.start + MAX_CUE_SECONDS
        assert 1 <= len(cue.lines) <= MAX_LINES
        assert " ".join(w.text for w in cue.words) == " ".join(cue.lines)
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


VOCABULARY = ["the", "comet", "everybody", "Jupiter", "well,", "really?", "it.", "NASA", "said:", "wow!"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(VOCABULARY), st.floats(0.15, 1.0), st.floats(0, 1.0)),
        min_size=1,
        max_size=60,
    ),
    st.floats(0, 5),
)
def test_speech_gives_cues_shown_long_enough_and_never_too_long(
    raw: list[tuple[str, float, float]], offset: float
) -> None:
    words, t = [], offset
    for text, length, gap in raw:
        words.append(Word(text, t, t + length))
        t += length + gap
    result = cues(words, offset)
    assert " ".join(c.text.replace("\n", " ") for c in result) == " ".join(w.text for w in words)
    for i, cue in enumerate(result):
        assert MIN_CUE_SECONDS - 1e-9 <= cue.end - cue.start <= MAX_CUE_SECONDS + 1e-9
        assert cue.words[-1].end - cue.words[0].start <= MAX_CUE_SECONDS + 1e-9
        assert len(cue.lines) <= MAX_LINES and all(len(line) <= MAX_LINE_CHARS for line in cue.lines)
        # A cue holds a sentence end inside only where a cue ending there would flash by.
        following = result[i + 1].start if i + 1 < len(result) else float("inf")
        for k, word in enumerate(cue.words[:-1]):
            if word.text.endswith(("?", "!", ".")):
                after = cue.words[k + 1].start
                assert min(after - cue.start, following - after) < MIN_CUE_SECONDS


def test_lines_break_after_a_sentence_or_clause_when_that_keeps_them_even_enough() -> None:
    (cue,) = cues(talk(*"It worked, finally. We could all see the comet clearly now.".split(), step=0.1))
    assert cue.lines == ("It worked, finally.", "We could all see the comet clearly now.")
    (cue,) = cues(talk(*"We looked up, and there it was, right above the hills.".split(), step=0.1))
    assert cue.lines == ("We looked up, and there it was,", "right above the hills.")


def test_two_line_cues_are_split_evenly() -> None:
    texts = "and then a little crowd started tearing it was".split()
    words = [Word(t, i * 0.2, i * 0.2 + 0.15) for i, t in enumerate(texts)]
    (cue,) = cues(words)
    assert len(cue.lines) == 2
    first, second = (len(line) for line in cue.lines)
    assert abs(first - second) <= max(len(t) for t in texts) + 1
    assert " ".join(cue.lines) == " ".join(texts)
