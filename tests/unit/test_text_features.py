import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.media import TEXT_FEATURES, Span, Transcript, Word
from domain.text_features import SENTENCE_PAUSE, boundaries, text_features

RATE, PAUSE, SENTENCE_END = (TEXT_FEATURES.index(n) for n in ("speaking_rate", "pause", "sentence_end"))


def transcript(*spans: tuple[float, float]) -> Transcript:
    return Transcript(tuple(Word(f"w{i}", s, e) for i, (s, e) in enumerate(spans)))


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


def test_sentence_edges_are_the_strongest_cuts() -> None:
    words = transcript((1.0, 1.5), (1.5, 2.0), (3.0, 3.4))
    b = boundaries(words, [], [1.2], 10.0)
    assert 1.2 not in b.starts  # the shot cut lies inside a word
    strong_ends = b.ends[b.end_strength == 1.0]
    assert strong_ends == pytest.approx([2.25, 3.65])  # word end plus padding into the pause
    assert b.start_strength[b.starts == 1.5] < 1.0  # touching words: a valid but weak cut


def test_no_words_and_no_events_fall_back_to_a_grid() -> None:
    b = boundaries(Transcript(), [], [], 30.0)
    assert len(b.starts) > 3 and len(b.ends) > 3
    assert b.ends[-1] == 30.0 and b.starts[0] == 0.0
