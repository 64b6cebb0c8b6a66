"""Where long audio is cut for recognition, on synthetic sample arrays with known pauses."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.speech.chunks import FRAME, plan_chunks, quietest_frame, stream_chunks
from adapters.speech.vad import SAMPLE_RATE
from domain.media import Span


def tone(seconds: float, quiet: tuple[float, ...] = (), pause: float = 0.01) -> np.ndarray:
    """Loud noise with ``pause`` seconds of silence at each ``quiet`` time."""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 8000).astype(np.int16)
    for t in quiet:
        i = int(t * SAMPLE_RATE) // FRAME * FRAME
        audio[i : i + int(pause * SAMPLE_RATE)] = 0
    return audio


def test_chunks_join_segments_and_cut_only_in_gaps() -> None:
    speech = [Span(1.0, 3.0), Span(4.0, 6.0), Span(8.0, 11.0), Span(20.0, 21.0)]
    chunks = plan_chunks(speech, tone(30.0), chunk_seconds=6.0)
    seconds = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in chunks]
    assert seconds == [(0.75, 6.25), (7.75, 11.25), (19.75, 21.25)]


def test_a_long_segment_is_cut_at_its_quietest_frame_near_the_limit() -> None:
    chunks = plan_chunks([Span(0.0, 25.0)], tone(25.0, quiet=(9.2, 17.5)), chunk_seconds=10.0)
    assert [round(a / SAMPLE_RATE, 2) for a, _ in chunks] == [0.0, 9.2, 17.5]
    assert chunks[-1][1] == 25 * SAMPLE_RATE
    assert all(b - a <= 10 * SAMPLE_RATE for a, b in chunks)


def test_a_pause_between_words_wins_over_a_deeper_but_shorter_dip() -> None:
    audio = tone(12.0, quiet=(8.0,), pause=0.01)  # a stop consonant's closure: silent, but for 10 ms
    i = int(9.0 * SAMPLE_RATE)
    audio[i : i + int(0.2 * SAMPLE_RATE)] //= 20  # a pause between words: quiet (room tone) for 200 ms
    chunks = plan_chunks([Span(0.0, 12.0)], audio, chunk_seconds=10.0)
    assert 9.0 <= chunks[0][1] / SAMPLE_RATE <= 9.2


def test_quietest_frame_of_short_and_empty_stretches() -> None:
    assert quietest_frame(np.array([], np.float32)) == 0
    assert quietest_frame(np.array([3.0, 1.0, 2.0], np.float32)) == 1
    rms = np.ones(100, np.float32)
    rms[40:60] = 0.1
    rms[50] = 0.05
    rms[90] = 0.0
    assert quietest_frame(rms) == 50


def test_silence_without_segments_is_skipped_and_noise_is_cut_in_fixed_chunks() -> None:
    assert plan_chunks([], np.zeros(10 * SAMPLE_RATE, np.int16), 4.0) == []
    chunks = plan_chunks([], tone(10.0), 4.0)
    assert chunks[0][0] == 0 and chunks[-1][1] == 10 * SAMPLE_RATE
    assert all(b - a <= 4 * SAMPLE_RATE for a, b in chunks)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(chunks))


def test_chunks_stream_out_before_the_audio_is_all_decoded() -> None:
    consumed = 0

    def blocks():  # ten minutes of speech-like tone, 10 s at a time
        nonlocal consumed
        for _ in range(60):
            consumed += 1
            yield tone(10.0)

    speech = [Span(t, t + 4.0) for t in range(0, 600, 5)]
    chunks = stream_chunks(speech, blocks(), chunk_seconds=20.0)
    a, b, samples = next(chunks)
    assert samples.size == b - a and (b - a) <= 20 * SAMPLE_RATE
    assert consumed <= 3, "the first chunk must not wait for the whole file"
    assert len(list(chunks)) >= 25


@st.composite
def talks(draw: st.DrawFn) -> tuple[list[Span], float]:
    """Words (speech segments of 0.2–1.5 s) with gaps of 0.6–3 s, and a chunk limit above any word."""
    t, words = draw(st.floats(0.0, 2.0)), []
    for _ in range(draw(st.integers(1, 25))):
        length = draw(st.floats(0.2, 1.5))
        words.append(Span(round(t, 3), round(t + length, 3)))
        t += length + draw(st.floats(0.6, 3.0))
    return words, draw(st.floats(2.0, 12.0))


@settings(max_examples=60, deadline=None)
@given(talks())
def test_no_chunk_splits_a_word_or_holds_it_twice(talk: tuple[list[Span], float]) -> None:
    words, limit = talk
    audio = tone(words[-1].end + 1.0)
    chunks = plan_chunks(words, audio, limit)
    for (_, end), (start, _) in itertools.pairwise(chunks):
        assert end <= start, "chunks overlap"
    for word in words:
        a, b = int(word.start * SAMPLE_RATE), int(word.end * SAMPLE_RATE)
        holding = [c for c in chunks if c[0] <= a and b <= c[1]]
        assert len(holding) == 1, f"{word} is in {len(holding)} chunks"
        assert all(c[1] <= a or b <= c[0] for c in chunks if c not in holding), f"{word} is cut"
    for a, b in chunks:
        assert b - a <= int(limit * SAMPLE_RATE)
