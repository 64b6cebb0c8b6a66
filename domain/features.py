"""The per-second feature matrix the highlight model scores, and its cache encoding.

Workers store each video's matrix under ``features_key(sha256)`` when they score it, so training reads
features from the cache and never decodes video.
"""

from __future__ import annotations

import io

import numpy as np

from domain.media import MEDIA_FEATURES, TEXT_FEATURES, Analysis, Transcript
from domain.text_features import text_features

FEATURE_NAMES: tuple[str, ...] = MEDIA_FEATURES + TEXT_FEATURES
# Kept for training long after the analysis cache's own entries expire: about 144 KB per hour of video.
FEATURES_TTL_SECONDS = 400 * 24 * 3600
_FEATURES_FORMAT = "1"


def features_key(sha256: str) -> str:
    return f"features:v{_FEATURES_FORMAT}:{sha256}"


def feature_matrix(analysis: Analysis, transcript: Transcript) -> np.ndarray:
    """(seconds × len(FEATURE_NAMES)) float32: the analyzer's columns by name, then the transcript's.

    A column the analyzer did not produce is left at 0; median centring in the model makes any
    constant column contribute nothing.
    """
    seconds = analysis.seconds
    x = np.zeros((seconds, len(FEATURE_NAMES)), dtype=np.float32)
    for i, name in enumerate(MEDIA_FEATURES):
        if name in analysis.columns:
            x[:, i] = analysis.column(name)
    x[:, len(MEDIA_FEATURES) :] = text_features(transcript, seconds)
    return x


def encode_features(matrix: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, features=np.ascontiguousarray(matrix, dtype="<f4"), columns=np.array(FEATURE_NAMES))
    return out.getvalue()


def decode_features(data: bytes) -> np.ndarray | None:
    """None for damaged bytes or another feature set (a cache miss, never a crash)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if tuple(str(c) for c in stored["columns"]) != FEATURE_NAMES:
                return None
            matrix = stored["features"].astype(np.float32)
    except (ValueError, KeyError, OSError, EOFError):
        return None
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
        return None
    return matrix
