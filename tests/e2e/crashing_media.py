"""A file whose decoding needs more memory than a worker's media children are allowed: pictures as large
as MAX_VIDEO_PIXELS lets through (7680×4320), so decoding one frame takes tens of megabytes and a clip's
render hundreds. Under a small MEDIA_MEMORY_LIMIT_BYTES it exhausts the child that works on it, however
the media adapters are mended; a normal file still fits.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HUGE = (7680, 4320)


def write_huge_frame_video(path: Path, seconds: int = 6, fps: int = 1) -> Path:
    width, height = HUGE
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            picture = np.full((height, width, 3), (i * 40) % 255, np.uint8)
            picture[: height // 2, : width // 2] = 255 - (i * 40) % 255  # a change to notice
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path
