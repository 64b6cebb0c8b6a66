"""`opusclip clip --burn-captions` as a user runs it: the clip's own captions read back from its frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adapters.media.synthetic import write_video
from tests.conftest import SAMPLE_SCENES
from tests.integration.test_burned_captions import frames_at, ink, norm, ocr


def _cues(srt: str) -> list[tuple[float, float, list[str]]]:
    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))

    cues = []
    for block in srt.strip().split("\n\n"):
        _, times, *lines = block.splitlines()
        start, end = times.split(" --> ")
        cues.append((seconds(start), seconds(end), " ".join(lines).split()))
    return cues


def test_burned_captions_read_back_from_the_clip(tmp_path: Path) -> None:
    # 720p: at 360p the captions are about 18 px high, legible to people but a coin toss for tesseract.
    path = tmp_path / "talk720.mp4"
    write_video(path, SAMPLE_SCENES, size=(1280, 720))
    out = tmp_path / "out"
    args = ["clip", str(path), "--out", str(out), "--min", "5", "--max", "12", "--max-clips", "1"]
    args += ["--captions", "srt", "--burn-captions", "--gap", "5", "--no-progress"]
    env = {**os.environ, "CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "clips.json").read_text())
    assert report["options"]["burn_captions"] is True and report["options"]["gap_seconds"] == 5
    clip = report["clips"][0]
    cues = _cues((out / clip["captions"]["srt"]).read_text())
    assert cues, "the sample's speech must give captions"

    # Three frames a cue, a quarter, half and three quarters into it: the cue's words are on screen in all
    # three, with another word highlighted in each, so one unlucky read does not decide the cue.
    during = [[a + (b - a) * f for f in (0.25, 0.5, 0.75)] for a, b, _ in cues]
    frames = frames_at(out / clip["file"], [t for times in during for t in times])
    pages = [ink(frames[t], highlighted_only=False) for times in during for t in times]
    texts = ocr(pages, tmp_path, psm=6)
    read = [{norm(w) for text in texts[3 * i : 3 * i + 3] for w in text.split()} for i in range(len(cues))]
    found = [
        sum(norm(w) in seen for w in words) / len(words)
        for (_, _, words), seen in zip(cues, read, strict=True)
    ]
    assert sum(found) / len(found) >= 0.8, list(zip([c[2] for c in cues], texts[::3], strict=True))
