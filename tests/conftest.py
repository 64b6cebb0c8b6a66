"""Shared fixtures: generated media with known truth (adapters.media.synthetic), made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.media.synthetic import Scene, Truth, write_video

# Four 10 s scenes: speech with a face, a loud lively moment, speech again, then quiet with motion.
SAMPLE_SCENES = (
    Scene(
        10.0, (40, 60, 120), speech="Welcome back to the show. Today we talk about small habits.", face_x=0.6
    ),
    Scene(10.0, (200, 80, 40), motion=0.8, loud=True),
    Scene(
        10.0, (30, 140, 70), speech="Here is the secret. Start before you feel ready, every day.", face_x=0.3
    ),
    Scene(10.0, (150, 40, 150), motion=0.3),
)


# Session scope: generating media is the slow part of media tests and the files are only ever read.
@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """A 40 s 640x360 h264/aac mp4: (path, truth)."""
    path = tmp_path_factory.mktemp("media") / "sample.mp4"
    return path, write_video(path, SAMPLE_SCENES)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for tests that write their own media."""
    return tmp_path_factory.mktemp("media-scratch")
