import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.media import Word
from domain.sentences import (
    CLAUSE_PAUSE,
    LONG_PAUSE,
    SENTENCE_PAUSE,
    Break,
    breaks,
    ends_sentence,
    sentences,
)


def said(text: str, *, step: float = 0.3, pauses: dict[int, float] | None = None) -> list[Word]:
    """One word every ``step`` seconds (each lasting 80% of it), with extra silence before some words."""
    words, t = [], 0.0
    for i, token in enumerate(text.split()):
        t += (pauses or {}).get(i, 0.0)
        words.append(Word(token, t, t + step * 0.8))
        t += step
    return words


def texts(text: str, pauses: dict[int, float] | None = None) -> list[str]:
    return [s.text for s in sentences(said(text, pauses=pauses))]


def test_punctuation_ends_sentences() -> None:
    assert texts("Hello, world. Really? Yes! Well… maybe") == [
        "Hello, world.",
        "Really?",
        "Yes!",
        "Well…",
        "maybe",
    ]


def test_closing_quotes_and_brackets_do_not_hide_the_end() -> None:
    assert texts('He said "stop." Then (he left.) OK') == ['He said "stop."', "Then (he left.)", "OK"]


@pytest.mark.parametrize("word", ["Mr.", "Dr.", "e.g.", "F.", "St."])
def test_abbreviations_and_initials_do_not_end_a_sentence(word: str) -> None:
    assert not ends_sentence(word)


@pytest.mark.parametrize("word", ["I.", "it.", "3.", "so...", "U.S.A.", "no."])
def test_other_periods_do_end_one(word: str) -> None:
    assert ends_sentence(word)


def test_in_punctuated_speech_a_short_pause_is_a_clause_and_only_a_long_one_ends_a_sentence() -> None:
    text = "and then we went home and slept. Fine"
    assert texts(text, pauses={2: SENTENCE_PAUSE + 0.1}) == ["and then we went home and slept.", "Fine"]
    assert texts(text, pauses={2: LONG_PAUSE}) == ["and then", "we went home and slept.", "Fine"]
    (first, _) = sentences(said(text, pauses={2: SENTENCE_PAUSE + 0.1}))
    assert [c.text for c in first.clauses] == ["and then", "we went home and slept."]


def test_unpunctuated_speech_is_split_by_pauses() -> None:
    text = "so the telescope saw the comet and then it was gone"
    pauses = {6: SENTENCE_PAUSE, 3: CLAUSE_PAUSE}
    (first, second) = sentences(said(text, pauses=pauses))
    assert first.text == "so the telescope saw the comet"
    assert [c.text for c in first.clauses] == ["so the telescope", "saw the comet"]
    assert second.text == "and then it was gone"


def test_commas_semicolons_colons_and_dashes_end_clauses() -> None:
    (only,) = sentences(said("First, second; third: fourth— fifth -- sixth."))
    assert [c.text for c in only.clauses] == ["First,", "second;", "third:", "fourth—", "fifth --", "sixth."]


def test_times_and_order() -> None:
    words = said("One. Two three.")
    first, second = sentences(list(reversed(words)))  # any order in, time order out
    assert (first.start, first.end) == (words[0].start, words[0].end)
    assert (second.start, second.end) == (words[1].start, words[2].end)


def test_no_words_no_sentences() -> None:
    assert sentences([]) == ()


def test_every_last_word_ends_a_sentence() -> None:
    assert breaks(said("no punctuation here")) == [Break.NONE, Break.NONE, Break.SENTENCE]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["word", "word,", "word.", "Word?", "x"]),
            st.floats(0, 3),
            st.floats(0, 1.5),
        ),
        max_size=40,
    )
)
def test_sentences_partition_the_words_and_clauses_partition_each_sentence(
    raw: list[tuple[str, float, float]],
) -> None:
    words, t = [], 0.0
    for text, gap, length in raw:
        t += gap
        words.append(Word(text, t, t + length))
        t += length
    result = sentences(words)
    assert [w for s in result for w in s.words] == words
    for sentence in result:
        assert [w for c in sentence.clauses for w in c.words] == list(sentence.words)
        assert sentence.words
