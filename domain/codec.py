"""Byte encodings of analysis results, so the Cache port can hold them between runs.

Format: a JSON header line, then (for Analysis) the raw float32 feature matrix. Versioned, so an old
entry is a miss rather than a crash.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np

from domain.media import Analysis, MediaInfo, Segment, Span, Transcript, Word

_FORMAT = 1
# 2: transcripts carry segments; a format-1 entry is a miss, not a transcript without segments.
_TRANSCRIPT_FORMAT = 2


def encode_analysis(analysis: Analysis) -> bytes:
    features = np.ascontiguousarray(analysis.features, dtype="<f4")
    header = {
        "format": _FORMAT,
        "info": attrs.asdict(analysis.info),
        "columns": list(analysis.columns),
        "shape": list(features.shape),
        "shot_cuts": list(analysis.shot_cuts),
        "speech": [[s.start, s.end] for s in analysis.speech],
    }
    return json.dumps(header).encode() + b"\n" + features.tobytes()


def decode_analysis(data: bytes) -> Analysis | None:
    """None when the bytes are from another format version or damaged (treated as a cache miss)."""
    try:
        head, _, body = data.partition(b"\n")
        header: dict[str, Any] = json.loads(head)
        if header.get("format") != _FORMAT:
            return None
        shape = tuple(header["shape"])
        features = np.frombuffer(body, dtype="<f4").reshape(shape).astype(np.float32)
        return Analysis(
            info=MediaInfo(**header["info"]),
            columns=tuple(header["columns"]),
            features=features,
            shot_cuts=tuple(header["shot_cuts"]),
            speech=tuple(Span(a, b) for a, b in header["speech"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def encode_transcript(transcript: Transcript) -> bytes:
    words = [[w.text, w.start, w.end, w.confidence] for w in transcript.words]
    segments = [[s.text, s.start, s.end] for s in transcript.segments]
    payload = {
        "format": _TRANSCRIPT_FORMAT,
        "language": transcript.language,
        "words": words,
        "segments": segments,
    }
    return json.dumps(payload).encode()


def decode_transcript(data: bytes) -> Transcript | None:
    try:
        payload = json.loads(data)
        if payload.get("format") != _TRANSCRIPT_FORMAT:
            return None
        words = tuple(Word(str(t), float(s), float(e), float(c)) for t, s, e, c in payload["words"])
        segments = tuple(Segment(str(t), float(s), float(e)) for t, s, e in payload["segments"])
        return Transcript(words=words, language=str(payload["language"]), segments=segments)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
