import itertools

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.media import Clip, ClipOptions, Span, Transcript, Word
from domain.selection import TITLE_CHARS, clip_title, select_clips
from domain.sentences import LONG_PAUSE, SENTENCE_PAUSE, sentences
from domain.text_features import CUT_PADDING

Video = tuple[np.ndarray, Transcript, tuple[float, ...], tuple[Span, ...], ClipOptions]


def spoken(pattern: list[tuple[float, float]], start: float = 0.0, text: str = "word") -> Transcript:
    """Words laid end to end from (gap before, length) pairs."""
    words, t = [], start
    for i, (gap, length) in enumerate(pattern):
        t += gap
        words.append(Word(f"{text}{i % 7}", t, t + length))
        t += length
    return Transcript(tuple(words))


def told(
    *sentences_: str, word: float = 0.4, pause: float = 0.6, inner: dict[int, float] | None = None
) -> Transcript:
    """Sentences, one word every ``word`` seconds, ``pause`` seconds of silence between them and
    ``inner[k]`` more before the k-th word of each."""
    words, t = [], 0.0
    for sentence in sentences_:
        for k, token in enumerate(sentence.split()):
            t += (inner or {}).get(k, 0.0)
            words.append(Word(token, t, t + word * 0.9))
            t += word
        t += pause
    return Transcript(tuple(words))


@st.composite
def videos(draw: st.DrawFn) -> tuple[Video, list[tuple[float, float]]]:
    """Unpunctuated speech: a pause of SENTENCE_PAUSE ends a sentence."""
    seconds = draw(st.integers(5, 240))
    scores = np.array(draw(st.lists(st.floats(-3, 3), min_size=seconds, max_size=seconds)), dtype=np.float32)
    # Touching words (gap 0) leave only weak cuts between them, where a mid-word shot cut looks better.
    gap = st.one_of(st.just(0.0), st.floats(0, 2.5))
    pattern = draw(st.lists(st.tuples(gap, st.floats(0.05, 3.0)), max_size=150))
    transcript = spoken(pattern)
    truth: list[tuple[float, float]] = []
    for i, w in enumerate(transcript.words):
        if i and w.start - transcript.words[i - 1].end < SENTENCE_PAUSE:
            truth[-1] = (truth[-1][0], w.end)
        else:
            truth.append((w.start, w.end))
    return _events(draw, scores, transcript), truth


@st.composite
def talks(draw: st.DrawFn) -> tuple[Video, list[tuple[float, float]]]:
    """Punctuated speech with pauses inside sentences, abbreviations and clause marks to tempt a cut."""
    words: list[Word] = []
    truth = []
    t = draw(st.floats(0, 20))
    for _ in range(draw(st.integers(1, 20))):
        count = draw(st.integers(1, 10))
        for k in range(count):
            if k:
                t += draw(st.one_of(st.just(0.0), st.floats(0, LONG_PAUSE - 0.1)))
            ends = (
                ["word.", "Why?", "Go!", 'said "no."', "so…"] if k == count - 1 else ["word", "Mr.", "well,"]
            )
            length = draw(st.floats(0.1, 1.5))
            words.append(Word(draw(st.sampled_from(ends)), t, t + length))
            t += length
        truth.append((words[-count].start, words[-1].end))
        t += draw(st.one_of(st.just(0.0), st.floats(0, 3), st.floats(0, 30)))
    seconds = int(t) + draw(st.integers(1, 20))
    scores = np.array(draw(st.lists(st.floats(-3, 3), min_size=seconds, max_size=seconds)), dtype=np.float32)
    return _events(draw, scores, Transcript(tuple(words))), truth


def _events(draw: st.DrawFn, scores: np.ndarray, transcript: Transcript) -> Video:
    seconds = scores.size
    # Shot cuts and speech edges that fall mid-word are the cases that tempt a selector to split a word.
    mid_words = [(w.start + w.end) / 2 for w in transcript.words if draw(st.booleans())]
    cuts = tuple(draw(st.lists(st.floats(0, seconds), max_size=10))) + tuple(mid_words)
    vad = tuple(
        Span(s, s + d)
        for s, d in draw(st.lists(st.tuples(st.sampled_from([0.0, *mid_words]), st.floats(0, 9))))
    )
    low = draw(st.floats(1, 40))
    options = ClipOptions(
        min_seconds=low,
        max_seconds=low + draw(st.floats(0, 60)),
        max_clips=draw(st.integers(1, 8)),
        gap_seconds=draw(st.sampled_from([0.0, 5.0, 10.0])),
    )
    return scores, transcript, cuts, vad, options


def run(video: Video) -> list[Clip]:
    scores, transcript, cuts, vad, options = video
    return select_clips(
        scores, transcript, options=options, duration=float(scores.size), shot_cuts=cuts, speech=vad
    )


def assert_every_rule(video: Video, truth: list[tuple[float, float]]) -> None:
    scores, transcript, _, _, options = video
    clips = run(video)
    assert len(clips) <= options.max_clips
    words = sorted(transcript.words, key=lambda w: w.start)
    for clip in clips:
        assert options.min_seconds <= clip.span.duration <= options.max_seconds
        assert clip.span.start >= 0 and clip.span.end <= scores.size
        for w in transcript.words:
            assert not w.start < clip.span.start < w.end, "a word straddles the start"
            assert not w.start < clip.span.end < w.end, "a word straddles the end"
        for begin, end in truth:
            if end - begin <= options.max_seconds - 2 * CUT_PADDING:  # a sentence that fits is never cut
                assert not begin < clip.span.start < end and not begin < clip.span.end < end, (
                    "a sentence is cut"
                )
        assert clip.words == transcript.between(clip.span)
        if clip.words:
            # Speech starts right away and stops at the end, unless the clip opens or closes on a stretch
            # without words long enough to be a clip of its own.
            first = words.index(clip.words[0])
            last = words.index(clip.words[-1])
            silence_before = clip.words[0].start - (words[first - 1].end if first else 0.0)
            silence_after = (words[last + 1].start if last + 1 < len(words) else scores.size) - clip.words[
                -1
            ].end
            assert (
                clip.words[0].start - clip.span.start <= CUT_PADDING + 1e-9
                or silence_before >= options.min_seconds
            )
            assert (
                clip.span.end - clip.words[-1].end <= CUT_PADDING + 1e-9
                or silence_after >= options.min_seconds
            )
            # The title is the speaker's own words, never a bag of keywords.
            assert clip.title.removesuffix("…").lower() in " ".join(w.text for w in clip.words).lower()
        assert 0 < len(clip.title) <= TITLE_CHARS
    for a, b in itertools.pairwise(clips):
        assert (a.score, -a.span.start) >= (b.score, -b.span.start)
    assert [c.rank for c in clips] == list(range(1, len(clips) + 1))
    assert not any(a.span.overlaps(b.span) for i, a in enumerate(clips) for b in clips[i + 1 :])
    assert run(video) == clips


@settings(max_examples=60, deadline=None)
@given(videos())
def test_clips_honour_every_rule_in_unpunctuated_speech(
    case: tuple[Video, list[tuple[float, float]]],
) -> None:
    assert_every_rule(*case)


@settings(max_examples=60, deadline=None)
@given(talks())
def test_clips_honour_every_rule_in_punctuated_speech(case: tuple[Video, list[tuple[float, float]]]) -> None:
    assert_every_rule(*case)


def gaps(clips: list[Clip]) -> list[float]:
    spans = sorted((c.span for c in clips), key=lambda span: span.start)
    return [b.start - a.end for a, b in itertools.pairwise(spans)]


def test_clips_start_and_end_with_sentences_even_when_pauses_inside_them_are_longer() -> None:
    sentence = "We went out, and then we saw the most amazing comet of all."
    # A 1.5 s pause inside every sentence, far longer than the 0.3 s between them.
    transcript = told(*[sentence] * 12, pause=0.3, inner={3: 1.5})
    scores = np.random.default_rng(3).normal(size=85)
    clips = select_clips(scores, transcript, options=ClipOptions(10, 20, max_clips=4))
    assert len(clips) == 4
    for clip in clips:
        assert clip.words[0].text == "We" and clip.words[-1].text == "all."
        assert clip.title == sentence


def test_a_sentence_longer_than_the_maximum_is_cut_at_clauses() -> None:
    clauses = ["first we walked for a while,"] * 12 + ["then we stopped."]
    transcript = told(" ".join(clauses), word=0.5)  # one 40 s sentence
    clips = select_clips(np.ones(45), transcript, options=ClipOptions(8, 15, max_clips=2, gap_seconds=0))
    assert len(clips) == 2
    for clip in clips:
        assert clip.words[-1].text in ("while,", "stopped.")
        assert clip.words[0].text in ("first", "then")
        assert clip.title == "First we walked for a while,"  # a complete clause, when no sentence is whole


def test_a_strong_passage_is_returned_whole() -> None:
    # A sentence every 5 s; a strong 40 s passage from 120 s to 160 s in a flat video.
    transcript = told(*[TEN] * 60, word=0.45, pause=0.5)
    scores = np.zeros(300)
    scores[120:160] = 2.0
    clips = select_clips(scores, transcript, options=ClipOptions(15, 60, max_clips=3))
    best = clips[0]
    # All of it, where a mean score would have picked 15 s of it; at most its pause's worth more.
    assert best.span.start == pytest.approx(120 - CUT_PADDING)
    assert 159.4 < best.span.end < 165
    # Noise around it: the whole passage still, give or take one sentence of noise.
    noisy = scores + np.random.default_rng(5).normal(0, 0.3, scores.size)
    best = select_clips(noisy, transcript, options=ClipOptions(15, 60, max_clips=1))[0]
    assert 115 <= best.span.start <= 120 and 159 <= best.span.end <= 165


def test_weak_material_around_a_passage_is_left_out() -> None:
    transcript = told(*[TEN] * 60, word=0.45, pause=0.5)
    scores = np.full(300, 0.5)
    scores[100:120] = scores[160:180] = -1.0  # below the median: padding with it costs
    scores[120:160] = 2.0
    best = select_clips(scores, transcript, options=ClipOptions(15, 60, max_clips=1))[0]
    last_word = max(w.end for w in best.words)
    assert best.span.start == pytest.approx(120 - CUT_PADDING)
    assert best.span.end == pytest.approx(last_word + CUT_PADDING) and last_word == pytest.approx(159.455)


TEN = "one two three four five six seven eight nine ten."


def hill(seconds: int = 300) -> np.ndarray:
    t = np.arange(seconds)
    return np.exp(-(((t - seconds / 2) / 30.0) ** 2))


def test_picks_keep_the_gap_from_each_other() -> None:
    transcript = told(*["Go."] * 300, word=0.5, pause=0.5)  # a sentence every second
    options = ClipOptions(10, 12, max_clips=4, gap_seconds=10)
    clips = select_clips(hill(), transcript, options=options)
    assert len(clips) == 4
    assert min(gaps(clips)) >= 10
    assert clips[0].span.contains(150)
    hugging = select_clips(hill(), transcript, options=ClipOptions(10, 12, max_clips=4, gap_seconds=0))
    assert min(gaps(hugging)) < 1  # without a gap, runner-ups hug the best clip


def test_a_short_video_fills_with_closer_clips_when_nothing_else_is_left() -> None:
    transcript = told(*["Go."] * 60, word=0.5, pause=0.5)  # 60 s, a sentence every second
    options = ClipOptions(9, 10, max_clips=3, gap_seconds=10)
    assert min(gaps(select_clips(hill(60), transcript, options=options))) >= 10  # 3 fit 10 s apart
    four = select_clips(hill(60), transcript, options=attrs.evolve(options, max_clips=4))
    assert len(four) == 4  # four 10 s clips fit in 60 s only with a gap under 10 s
    assert not any(a.span.overlaps(b.span) for a, b in itertools.combinations(four, 2))
    assert min(gaps(four)) < 10
    # In 45 s, three clips fit 5 s apart around the best one: the gap shrinks no more than it must.
    three = select_clips(hill(45), transcript, duration=45, options=options)
    assert len(three) == 3 and min(gaps(three)) >= 5


def test_the_gap_is_kept_even_when_the_best_ends_of_other_starts_break_it() -> None:
    # Every start's best end reaches into the peak; only a shorter span keeps the gap from the best clip.
    transcript = told(*["Go."] * 100, word=0.5, pause=0.5)
    scores = np.zeros(100)
    scores[50:60] = 5.0
    scores[20:40] = 0.2
    clips = select_clips(scores, transcript, options=ClipOptions(5, 30, max_clips=2, gap_seconds=10))
    assert clips[0].span.contains(50) and clips[0].span.contains(59.5)
    assert clips[1].span.end <= clips[0].span.start - 10
    assert clips[1].span.overlaps(Span(20, 40))


def test_shot_cuts_and_silences_inside_words_are_not_used() -> None:
    transcript = spoken([(0.0, 3.0)] * 20)  # one 60 s sentence of long touching words: cut between them
    inner = tuple(w.start + 1.5 for w in transcript.words)
    clips = select_clips(
        np.random.default_rng(1).normal(size=60),
        transcript,
        shot_cuts=inner,
        speech=tuple(Span(t - 1, t + 0.5) for t in inner),
        options=ClipOptions(min_seconds=4, max_seconds=10, max_clips=5, gap_seconds=0),
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
    assert clips[0].span == Span(160.0, 200.0)  # the score rises towards the end: all of its top is taken
    assert clips[0].title == "Highlight at 2:40"
    cut = select_clips(
        np.ones(200), Transcript(), shot_cuts=(77.5,), options=ClipOptions(20, 40, max_clips=1)
    )
    assert 77.5 in (cut[0].span.start, cut[0].span.end)  # on flat scores, a shot cut beats a grid point


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
    assert min(gaps(clips)) >= ClipOptions().gap_seconds


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_do_not_break_selection(bad: float) -> None:
    scores = np.ones(60)
    scores[10] = bad
    assert len(select_clips(scores, Transcript(), options=ClipOptions(10, 20, max_clips=2))) == 2


# ---------------------------------------------------------------- titles


def title(transcript: Transcript, scores: np.ndarray, span: Span | None = None) -> str:
    words = transcript.words
    return clip_title(sentences(words), span or Span(0, max(w.end for w in words) + 1), scores)


def test_the_title_is_the_highest_scoring_sentence_in_the_speakers_words() -> None:
    transcript = told(
        "So here we are.", "The comet hit Jupiter, and nobody saw it coming!", "Thanks for that."
    )
    scores = np.zeros(10)
    assert transcript.words[4].start == pytest.approx(2.2)  # "The" opens the second sentence
    scores[3:5] = 3.0
    assert title(transcript, scores) == "The comet hit Jupiter, and nobody saw it coming!"


def test_ties_go_to_the_earlier_sentence_and_short_sentences_yield_to_full_ones() -> None:
    transcript = told("Yes.", "It went well.", "It went badly.")
    assert title(transcript, np.ones(10)) == "It went well."
    scores = np.zeros(10)
    scores[0] = 9.0  # "Yes." scores best but is too short to be a hook
    assert title(transcript, scores) == "It went well."
    assert title(told("Yes.", "No!"), np.array([0.0, 1.0])) == "No!"  # when nothing longer is said


def test_a_clip_inside_a_long_sentence_takes_its_best_complete_clause() -> None:
    transcript = told("we walked for a while, and then, quite suddenly, the sky went dark.")
    scores = np.zeros(10)
    scores[3] = 5.0  # "quite suddenly," lies at 3.0-4.0 s
    assert title(transcript, scores, Span(2.0, 6.0)) == "Quite suddenly,"  # capitalised, as a title starts
    assert title(transcript, scores) == "We walked for a while, and then, quite suddenly, the sky…"


def test_a_long_title_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    transcript = told("Astronomers everywhere, including amateurs, watched the collision, stunned.")
    result = title(transcript, np.ones(10))
    assert result == "Astronomers everywhere, including amateurs, watched the…"
    assert len(result) <= TITLE_CHARS
    assert title(told("X" * 100 + "."), np.ones(10)) == "X" * (TITLE_CHARS - 1) + "…"
    dangling = told("When the comet came around the sun for the very first time, we all ran outside.")
    assert title(dangling, np.ones(10)) == "When the comet came around the sun for the very first time…"


def test_clips_without_words_are_titled_by_their_time() -> None:
    assert clip_title((), Span(65.0, 80.0), np.ones(100)) == "Highlight at 1:05"
    assert clip_title((), Span(3725.0, 3740.0), np.ones(4000)) == "Highlight at 1:02:05"


def test_titles_keep_the_speakers_casing() -> None:
    transcript = told("iPhones changed how NASA works.")
    assert title(transcript, np.ones(10)) == "iPhones changed how NASA works."
