import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.media import ClipOptions, Span, Transcript, Word
from domain.selection import TITLE_CHARS, clip_title, select_clips


def spoken(pattern: list[tuple[float, float]], start: float = 0.0, text: str = "word") -> Transcript:
    """Words laid end to end from (gap before, length) pairs."""
    words, t = [], start
    for i, (gap, length) in enumerate(pattern):
        t += gap
        words.append(Word(f"{text}{i % 7}", t, t + length))
        t += length
    return Transcript(tuple(words))


@st.composite
def videos(
    draw: st.DrawFn,
) -> tuple[np.ndarray, Transcript, tuple[float, ...], tuple[Span, ...], ClipOptions]:
    seconds = draw(st.integers(5, 240))
    scores = np.array(draw(st.lists(st.floats(-3, 3), min_size=seconds, max_size=seconds)), dtype=np.float32)
    # Touching words (gap 0) leave only weak cuts between them, where a mid-word shot cut looks better.
    gap = st.one_of(st.just(0.0), st.floats(0, 2.5))
    pattern = draw(st.lists(st.tuples(gap, st.floats(0.05, 3.0)), max_size=150))
    transcript = spoken(pattern)
    # Shot cuts and speech edges that fall mid-word are the cases that tempt a selector to split a word.
    mid_words = [(w.start + w.end) / 2 for w in transcript.words if draw(st.booleans())]
    cuts = tuple(draw(st.lists(st.floats(0, seconds), max_size=10))) + tuple(mid_words)
    vad = tuple(
        Span(s, s + d)
        for s, d in draw(st.lists(st.tuples(st.sampled_from([0.0, *mid_words]), st.floats(0, 9))))
    )
    low = draw(st.floats(1, 40))
    options = ClipOptions(
        min_seconds=low, max_seconds=low + draw(st.floats(0, 60)), max_clips=draw(st.integers(1, 8))
    )
    return scores, transcript, cuts, vad, options


def run(video: tuple[np.ndarray, Transcript, tuple[float, ...], tuple[Span, ...], ClipOptions]) -> list:
    scores, transcript, cuts, vad, options = video
    return select_clips(
        scores, transcript, options=options, duration=float(scores.size), shot_cuts=cuts, speech=vad
    )


@settings(max_examples=60, deadline=None)
@given(videos())
def test_clips_honour_every_rule(video: tuple) -> None:
    scores, transcript, _, _, options = video
    clips = run(video)
    assert len(clips) <= options.max_clips
    for clip in clips:
        assert options.min_seconds <= clip.span.duration <= options.max_seconds
        assert clip.span.start >= 0 and clip.span.end <= scores.size
        for w in transcript.words:
            assert not w.start < clip.span.start < w.end, "a word straddles the start"
            assert not w.start < clip.span.end < w.end, "a word straddles the end"
        assert clip.words == transcript.between(clip.span)
        assert 0 < len(clip.title) <= TITLE_CHARS
    for a, b in itertools.pairwise(clips):
        assert (a.score, -a.span.start) >= (b.score, -b.span.start)
    assert [c.rank for c in clips] == list(range(1, len(clips) + 1))
    assert not any(a.span.overlaps(b.span) for i, a in enumerate(clips) for b in clips[i + 1 :])
    assert run(video) == clips


def test_shot_cuts_and_silences_inside_words_are_not_used() -> None:
    transcript = spoken([(0.0, 3.0)] * 20)  # long touching words: only their edges are clean cuts
    inner = tuple(w.start + 1.5 for w in transcript.words)
    clips = select_clips(
        np.random.default_rng(1).normal(size=60),
        transcript,
        shot_cuts=inner,
        speech=tuple(Span(t - 1, t + 0.5) for t in inner),
        options=ClipOptions(min_seconds=4, max_seconds=10, max_clips=5),
    )
    assert len(clips) == 5
    for clip in clips:
        assert clip.span.start % 3.0 == 0 and clip.span.end % 3.0 == 0


def test_the_best_clip_covers_the_peak() -> None:
    scores = np.zeros(300, dtype=np.float32)
    scores[200:220] = 5.0
    transcript = spoken([(0.6, 0.4)] * 300)  # a sentence end every second
    clips = select_clips(scores, transcript, options=ClipOptions(min_seconds=15, max_seconds=30, max_clips=3))
    assert clips[0].span.overlaps(Span(200, 220))
    assert clips[0].span.start >= 185 and clips[0].span.end <= 235
    assert clips[0].score > clips[1].score


def test_clean_sentence_boundaries_win_when_scores_tie() -> None:
    # Two 10-word sentences of continuous speech separated by a long pause; flat scores.
    first = spoken([(0.0, 0.5)] * 20, start=2.0)
    second = spoken([(0.0, 0.5)] * 20, start=14.0)
    transcript = Transcript(first.words + second.words)
    clip = select_clips(
        np.ones(30), transcript, options=ClipOptions(min_seconds=5, max_seconds=12, max_clips=1)
    )[0]
    starts = {w.start for w in transcript.words[:1] + second.words[:1]}
    assert min(abs(clip.span.start + 0.25 - s) for s in starts) < 1e-9  # starts just before a sentence
    assert abs(clip.span.end - (second.words[-1].end + 0.25)) < 1e-9 or abs(clip.span.end - 12.25) < 1e-9


def test_video_shorter_than_the_minimum_gives_no_clip() -> None:
    assert select_clips(np.ones(10), Transcript(), options=ClipOptions(min_seconds=15, max_seconds=60)) == []


def test_silent_video_is_cut_on_shot_cuts_or_a_grid() -> None:
    scores = np.linspace(0, 1, 200)
    clips = select_clips(
        scores, Transcript(), options=ClipOptions(min_seconds=20, max_seconds=40, max_clips=3)
    )
    assert len(clips) == 3
    assert clips[0].span.end == 200.0  # the score rises towards the end
    assert clips[0].title.startswith("Highlight at ")
    cut = select_clips(scores, Transcript(), shot_cuts=(177.5,), options=ClipOptions(20, 40, max_clips=1))
    assert cut[0].span.start == 177.5  # a shot cut beats a grid point


TALK = "so um the telescope saw the comet and the comet"


def test_title_prefers_informative_words_in_spoken_order() -> None:
    words = [Word(t, i, i + 0.5) for i, t in enumerate(TALK.split())]
    counts = {"telescope": 1, "comet": 2, "saw": 1}
    title = clip_title(words, counts, 0.0)
    assert title == "Telescope Saw Comet"
    assert clip_title(words, counts, 0.0) == title  # deterministic


def test_title_is_capped() -> None:
    words = [Word(f"extraordinarily{i}", i, i + 0.5) for i in range(20)]
    assert len(clip_title(words, {}, 0.0)) <= TITLE_CHARS


def test_four_hour_video_is_handled() -> None:
    rng = np.random.default_rng(7)
    pattern = [
        (float(g), float(d))
        for g, d in zip(rng.exponential(0.15, 30000), rng.uniform(0.1, 0.5, 30000), strict=True)
    ]
    transcript = spoken(pattern)
    seconds = 14400
    clips = select_clips(
        rng.normal(size=seconds), transcript, duration=float(seconds), options=ClipOptions(max_clips=10)
    )
    assert len(clips) == 10
    assert clips == sorted(clips, key=lambda c: -c.score)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_do_not_break_selection(bad: float) -> None:
    scores = np.ones(60)
    scores[10] = bad
    assert len(select_clips(scores, Transcript(), options=ClipOptions(10, 20, max_clips=2))) == 2


def test_title_keeps_contractions_out_and_capitalises_only_first_letters() -> None:
    words = [
        Word(t, i, i + 0.5) for i, t in enumerate(["we'll", "talk", "about", "mcdonald", "habits", "today"])
    ]
    title = clip_title(words, {}, 0.0)
    assert "We'll" not in title and "'L" not in title
    assert "Mcdonald" in title and "Habits" in title
