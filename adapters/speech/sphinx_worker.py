"""What runs inside a recognition worker process: pocketsphinx and nothing else.

Kept apart from the transcriber so a worker imports neither PyAV nor numpy (about 50 MB each worker).
"""

from __future__ import annotations

from typing import Any

from pocketsphinx import Decoder

from adapters.process_guard import die_with_parent

# One decoder per worker process, built once by the pool's initializer: loading the model takes ~0.3 s.
_decoder: Any = None

RawWord = tuple[str, int, int, float]  # text, first frame, last frame, posterior probability


def init_worker() -> None:
    global _decoder
    die_with_parent()
    _decoder = Decoder(loglevel="ERROR")


def recognise(pcm: bytes) -> list[RawWord]:
    """Decode one chunk of 16 kHz mono s16 audio as a single utterance."""
    if _decoder is None:
        init_worker()
    decoder = _decoder
    # Feature state (CMN and friends) carries over between utterances and shifts words and posteriors;
    # resetting it (~0.1 ms) makes a chunk's words independent of which worker decoded what before.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [(seg.word, seg.start_frame, seg.end_frame, float(seg.prob)) for seg in decoder.seg()]
