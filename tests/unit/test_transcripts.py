"""Transcripts: chunk results put together in media time, their cache encoding, and cache keys that
change with the speech model."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.speech.whisper import _Heard, assemble
from application.process_job import ProcessJob
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.codec import decode_transcript, encode_transcript
from domain.media import Segment, Transcript, Word
from tests.unit.fakes import FakeTranscriber, process_job_parts


def heard(*phrases: tuple[tuple[str, float, float], ...], language: str = "en") -> _Heard:
    return _Heard(tuple(tuple(Word(t, s, e, 0.9) for t, s, e in phrase) for phrase in phrases), language)


def test_chunks_land_at_their_start_in_media_time_with_one_segment_per_phrase() -> None:
    first = heard((("Hello,", 0.1, 0.4), ("world.", 0.5, 0.9)), (("Next", 1.2, 1.5),))
    second = heard((("Again.", 0.2, 0.6),))
    transcript = assemble([(10.0, first), (40.0, second)])
    assert [(w.text, w.start, w.end) for w in transcript.words] == [
        ("Hello,", 10.1, 10.4),
        ("world.", 10.5, 10.9),
        ("Next", 11.2, 11.5),
        ("Again.", 40.2, 40.6),
    ]
    assert transcript.segments == (
        Segment("Hello, world.", 10.1, 10.9),
        Segment("Next", 11.2, 11.5),
        Segment("Again.", 40.2, 40.6),
    )


def test_word_edges_in_silence_move_to_the_speech_and_words_in_speech_keep_theirs() -> None:
    # Whisper's first word reaches back into the pause before it, its last word on into the pause after.
    phrase = heard((("So", 0.0, 0.9), ("it", 0.9, 1.1), ("goes.", 1.1, 2.6)))
    transcript = assemble([(0.0, phrase)], speech=[(0.5, 2.0), (3.0, 4.0)])
    assert [(w.start, w.end) for w in transcript.words] == [(0.5, 0.9), (0.9, 1.1), (1.1, 2.0)]
    untouched = assemble([(0.0, phrase)], speech=[(0.0, 3.0)])
    assert [(w.start, w.end) for w in untouched.words] == [(0.0, 0.9), (0.9, 1.1), (1.1, 2.6)]
    outside = assemble([(0.0, heard((("Hm.", 2.2, 2.8),)))], speech=[(0.5, 2.0), (3.0, 4.0)])
    assert [(w.start, w.end) for w in outside.words] == [(2.2, 2.8)], "a word wholly outside keeps its times"


def test_words_before_media_time_zero_are_dropped_and_none_overlap() -> None:
    chunk = heard((("priming", 0.0, 0.03), ("Early", 0.04, 0.5), ("late", 0.45, 0.9)))
    transcript = assemble([(-0.05, chunk)])
    assert [w.text for w in transcript.words] == ["Early", "late"]
    assert transcript.words[0].start == 0.0
    assert transcript.words[0].end <= transcript.words[1].start


def test_the_language_is_the_one_most_words_were_heard_in() -> None:
    english = heard((("one", 0.0, 0.2), ("two", 0.3, 0.5)))
    french = heard((("un", 0.0, 0.2),), language="fr")
    assert assemble([(0.0, english), (5.0, french)]).language == "en"
    assert assemble([]).language == "en"


times = st.floats(0.0, 50.0, allow_nan=False).map(lambda t: round(t, 3))


@given(st.lists(st.lists(st.tuples(times, st.floats(0.01, 2.0)), min_size=1, max_size=6), max_size=6))
def test_assembled_words_are_always_in_order_and_never_overlap(
    chunks: list[list[tuple[float, float]]],
) -> None:
    pieces = [
        (i * 30.0, heard(tuple((f"w{j}", s, s + d) for j, (s, d) in enumerate(sorted(chunk)))))
        for i, chunk in enumerate(chunks)
    ]
    transcript = assemble(pieces, speech=[(5.0, 20.0), (35.0, 70.0)])
    for a, b in itertools.pairwise(transcript.words):
        assert a.start <= a.end <= b.start <= b.end
    assert " ".join(s.text for s in transcript.segments) == transcript.text


def test_a_transcript_with_segments_survives_the_cache_encoding() -> None:
    transcript = Transcript(
        (Word("Hello,", 0.1, 0.4, 0.9), Word("world.", 0.5, 0.9, 0.8)),
        language="en",
        segments=(Segment("Hello, world.", 0.1, 0.9),),
    )
    assert decode_transcript(encode_transcript(transcript)) == transcript
    assert Transcript().segments == ()


def test_an_entry_from_before_segments_is_a_miss() -> None:
    old = b'{"format": 1, "language": "en", "words": [["hello", 0.0, 0.5, 1.0]]}'
    assert decode_transcript(old) is None
    assert decode_transcript(b"not json") is None


@pytest.fixture
def parts(tmp_path):
    transcriber = FakeTranscriber(version="faster-whisper-1.2.1/tiny.en-1a5afae06a4db91c/cpu-int8/r1")
    return process_job_parts(tmp_path, transcriber=transcriber)


async def _run(parts) -> frozenset[str]:
    submitted = await SubmitJob(parts["uow"])(SubmitJobRequest(owner="u1", source="talk.mp4", options={}))
    return (await ProcessJob(**parts)(submitted.job.id)).cache_hits


async def test_a_changed_speech_model_never_serves_an_old_transcript(parts) -> None:
    transcriber = parts["transcriber"]
    assert "transcribe" not in await _run(parts)
    assert "transcribe" in await _run(parts), "same model, same file: the cached transcript"
    assert transcriber.calls == 1

    transcriber.version = "faster-whisper-1.2.1/tiny.en-0123456789abcdef/cpu-int8/r1"  # new weights
    assert "transcribe" not in await _run(parts)
    assert transcriber.calls == 2
