import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.media import TEXT_FEATURES, Span, Transcript, Word
from domain.sentences import SENTENCE_PAUSE
from domain.text_features import CLAUSE_STRENGTH, CUT_PADDING, boundaries, text_features

RATE, PAUSE, SENTENCE_END = (TEXT_FEATURES.index(n) for n in ("speaking_rate", "pause", "sentence_end"))


def transcript(*spans: tuple[float, float], text: str = "") -> Transcript:
    tokens = text.split() or [f"w{i}" for i in range(len(spans))]
    return Transcript(tuple(Word(t, s, e) for t, (s, e) in zip(tokens, spans, strict=True)))


def test_shape_and_dtype() -> None:
    x = text_features(transcript((0.2, 0.6)), 4)
    assert x.shape == (4, len(TEXT_FEATURES))
    assert x.dtype == np.float32


def test_no_words_is_all_pause() -> None:
    x = text_features(Transcript(), 3)
    assert np.array_equal(x[:, PAUSE], np.ones(3))
    assert not x[:, RATE].any() and not x[:, SENTENCE_END].any()


def test_words_spread_over_the_seconds_they_are_spoken_in() -> None:
    # Word spans 0.5..1.5: half of it in second 0, half in second 1.
    x = text_features(transcript((0.5, 1.5), (2.0, 2.5), (2.5, 3.0)), 4)
    assert x[:, RATE] == pytest.approx([0.5, 0.5, 2.0, 0.0])
    assert x[:, PAUSE] == pytest.approx([0.5, 0.5, 0.0, 1.0])


def test_sentence_end_marks_the_second_where_a_long_pause_begins() -> None:
    short_gap = 0.2
    x = text_features(transcript((0.0, 1.2), (1.2 + short_gap, 2.1), (2.1 + SENTENCE_PAUSE, 3.0)), 6)
    # 2.1 starts a pause of exactly SENTENCE_PAUSE; 3.0 starts the pause before the end of the video.
    assert list(np.flatnonzero(x[:, SENTENCE_END])) == [2, 3]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.floats(0.01, 2)), max_size=30))
def test_rate_counts_every_word_and_pause_is_a_fraction(raw: list[tuple[float, float]]) -> None:
    words = transcript(*[(s, s + d) for s, d in raw])
    x = text_features(words, 40)
    assert x[:, RATE].sum() == pytest.approx(len(raw), abs=1e-3)
    assert ((x[:, PAUSE] >= 0) & (x[:, PAUSE] <= 1)).all()


def inside_a_word(t: float, words: Transcript) -> bool:
    return any(w.start < t < w.end for w in words.words)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 50), st.floats(0.05, 3)), max_size=25),
    st.lists(st.floats(0, 60), max_size=8),
    st.lists(st.tuples(st.floats(0, 55), st.floats(0, 5)), max_size=5),
)
def test_boundaries_never_fall_inside_a_word(
    raw: list[tuple[float, float]], cuts: list[float], vad: list[tuple[float, float]]
) -> None:
    words = transcript(*[(s, s + d) for s, d in raw])
    b = boundaries(words, [Span(s, s + d) for s, d in vad], cuts, 60.0)
    for times, strength in ((b.starts, b.start_strength), (b.ends, b.end_strength)):
        assert not any(inside_a_word(float(t), words) for t in times)
        assert (np.diff(times) > 0).all()
        assert ((times >= 0) & (times <= 60.0)).all()
        assert ((strength >= 0) & (strength <= 1)).all()


def test_sentence_edges_are_the_only_cuts_in_speech() -> None:
    words = transcript((1.0, 1.5), (1.5, 2.0), (3.0, 3.4))  # unpunctuated: the pause ends a sentence
    b = boundaries(words, [], [1.2, 2.6], 10.0, quiet_seconds=5.0)
    # Then a grid, only in the 6.6 s without words at the end: more than ``quiet_seconds``.
    assert list(b.starts) == pytest.approx([1.0 - CUT_PADDING, 3.0 - CUT_PADDING, 8.0, 9.0, 10.0])
    assert 1.5 not in b.starts and 1.5 not in b.ends  # touching words inside a sentence: no cut
    assert 2.6 not in b.starts  # a shot cut in a short pause between sentences: not a clip's start
    assert list(b.ends) == pytest.approx([2.0 + CUT_PADDING, 3.4 + CUT_PADDING, 10.0])
    assert (b.start_strength[:2] == 1.0).all()


def test_sentence_end_follows_punctuation() -> None:
    words = transcript((0.0, 0.4), (0.5, 0.9), (1.0, 1.4), (2.2, 2.6), text="Hi there. Nice to")
    x = text_features(words, 4)
    # "there." ends one sentence; "Nice to" runs on past a 0.8 s pause (a clause) to the transcript's end.
    assert list(np.flatnonzero(x[:, SENTENCE_END])) == [0, 2]


def test_shot_cuts_and_silences_cut_only_long_stretches_without_words() -> None:
    words = transcript((20.0, 20.5), (20.6, 21.0), text="Hello there.")
    b = boundaries(words, [Span(2.0, 19.0)], [10.0, 21.5], 23.0, quiet_seconds=15.0)
    assert {0.0, 2.0, 10.0} <= set(b.starts)  # 20 s of no words before the sentence
    assert 21.5 not in b.ends and 23.0 not in b.ends  # 2 s after it are too short to hold a clip
    assert {19.0, 10.0} <= set(b.ends)


def test_a_sentence_longer_than_a_clip_is_cut_at_clauses_then_at_word_gaps() -> None:
    text = "one two, three four five six seven eight."
    spans = [(i * 1.0, i * 1.0 + 0.9) for i in range(8)]
    b = boundaries(transcript(*spans, text=text), [], [], 8.0, longest=5.0)
    clause_start = 2.0 - 0.05  # "three" starts the second clause, half the 0.1 s gap before it
    assert b.start_strength[np.isclose(b.starts, clause_start)] == pytest.approx([CLAUSE_STRENGTH])
    # The second clause (2..7.9 s) is itself longer than 5 s: its word gaps are weak cuts.
    inner = b.start_strength[np.isclose(b.starts, 5.0 - 0.05)]
    assert 0 < inner[0] < CLAUSE_STRENGTH
    # The first clause (0..1.9 s) fits: no cut between its words.
    assert not np.isclose(b.starts, 1.0 - 0.05).any()
    short = boundaries(transcript(*spans, text=text), [], [], 8.0, longest=8.0)
    assert list(short.starts[short.starts < 7.9]) == [0.0]  # a sentence that fits a clip is never cut inside


def test_no_words_and_no_events_fall_back_to_a_grid() -> None:
    b = boundaries(Transcript(), [], [], 30.0)
    assert len(b.starts) > 3 and len(b.ends) > 3
    assert b.ends[-1] == 30.0 and b.starts[0] == 0.0
