"""A file that crashes the renderer today: 7.1 audio (PyAV's audio slicing segfaults on eight channels).

The worker must survive it. When the renderer is mended (downmixing any layout), this file stops crashing
and the fault test that uses it must find another crasher or run the decoder past its memory limit.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_eight_channel_video(path: Path, seconds: int = 20, fps: int = 25) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = out.add_stream("aac", rate=48_000, layout="7.1")
        for i in range(seconds * fps):
            picture = np.full((180, 320, 3), (i * 7) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        resampler = av.AudioResampler(format="fltp", layout="7.1", rate=48_000)
        noise = (rng.normal(0, 0.002, 48_000 * seconds) * 32767).clip(-32767, 32767).astype(np.int16)
        for start in range(0, noise.size, 1024):
            block = av.AudioFrame.from_ndarray(
                noise[None, start : start + 1024].copy(), format="s16", layout="mono"
            )
            block.sample_rate, block.pts, block.time_base = 48_000, start, Fraction(1, 48_000)
            for resampled in resampler.resample(block):
                out.mux(audio.encode(resampled))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))
    return path
