"""Frames that carry their own number as a row of black and white bars across the top, broad enough to
survive h264: a test reads back which source frame a rendered frame shows."""

from __future__ import annotations

import av
import numpy as np


def numbered_frame(
    index: int, size: tuple[int, int], *, bits: int, bar_rows: int, background: int = 128
) -> av.VideoFrame:
    """A yuv420p frame of ``background`` grey with bit ``b`` of ``index`` as bar ``b`` (white is 1)."""
    w, h = size
    luma = np.full((h, w), background, np.uint8)
    block = w // bits
    for bit in range(bits):
        luma[:bar_rows, bit * block : (bit + 1) * block] = 235 if index >> bit & 1 else 16
    chroma = np.full((h // 2, w), 128, np.uint8)
    return av.VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")


def frame_number(frame: av.VideoFrame, *, bits: int, bar_rows: int, margin: int) -> int:
    """The number ``numbered_frame`` drew, read from the middle half of each bar, ``margin`` pixels in from
    its sides (where compression blurs the edges)."""
    luma = frame.to_ndarray(format="gray")
    block = frame.width // bits
    rows = slice(bar_rows // 4, bar_rows * 3 // 4)
    means = [luma[rows, bit * block + margin : (bit + 1) * block - margin].mean() for bit in range(bits)]
    return sum(1 << bit for bit, mean in enumerate(means) if mean > 128)
