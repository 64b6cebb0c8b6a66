"""`opusclip clip` as a user runs it: a real process on generated media, its files, and its errors."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from adapters.media.synthetic import Truth, damage_packets, write_audio_only

OPUSCLIP = [sys.executable, "-m", "entrypoints.cli"]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CACHE_DIR": str(cwd / "cache"), "COLUMNS": "160", **env}
    return subprocess.run(
        [*OPUSCLIP, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def clipped(sample_video: tuple[Path, Truth], tmp_path_factory: pytest.TempPathFactory):
    path, truth = sample_video
    work = tmp_path_factory.mktemp("cli")
    args = ["clip", str(path), "--out", str(work / "out"), "--min", "5", "--max", "15", "--max-clips", "3"]
    return _run(args, work), work, truth


def test_clip_writes_clips_captions_and_report(clipped) -> None:
    result, work, truth = clipped
    assert result.returncode == 0, result.stderr
    report = json.loads((work / "out" / "clips.json").read_text())
    assert 1 <= len(report["clips"]) <= 3
    assert len(report["scores"]) == round(truth.duration)
    assert report["shot_cuts"], "the sample has scene changes"
    spans = []
    for clip in report["clips"]:
        assert 5 - 0.01 <= clip["duration"] <= 15 + 0.01
        media = work / "out" / clip["file"]
        with av.open(str(media)) as container:
            assert container.streams.video and container.streams.audio
            assert container.duration is not None
            assert abs(container.duration / av.time_base - clip["duration"]) < 0.2
        for name in clip["captions"].values():
            assert (work / "out" / name).exists()
        spans.append((clip["start"], clip["end"]))
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert [c["rank"] for c in report["clips"]] == list(range(1, len(report["clips"]) + 1))
    summary = " ".join(result.stdout.split())  # rich wraps the table to the terminal's width
    assert f"{len(report['clips'])} clips from sample.mp4" in summary
    for clip in report["clips"]:
        assert clip["file"] in summary and clip["title"] in summary
    assert "Clips, captions and clips.json are in" in summary
    assert not list(work.glob(".out.partial-*")), "staging folder left behind"


def test_progress_is_shown_per_stage(clipped) -> None:
    result, _, _ = clipped
    for stage in ("analyse", "transcribe", "render"):
        assert stage in result.stderr


def test_second_run_with_other_options_uses_the_cache(clipped, sample_video) -> None:
    _, work, _ = clipped
    path, _ = sample_video
    args = [
        "clip",
        str(path),
        "--out",
        str(work / "vertical"),
        "--min",
        "5",
        "--max",
        "10",
        "--aspect",
        "9:16",
    ]
    result = _run(args, work)
    assert result.returncode == 0, result.stderr
    report = json.loads((work / "vertical" / "clips.json").read_text())
    assert set(report["cache_hits"]) == {"analyse", "transcribe"}
    with av.open(str(work / "vertical" / report["clips"][0]["file"])) as container:
        stream = container.streams.video[0]
        assert stream.height > stream.width


def _truncated(folder: Path, source: Path) -> Path:
    data = source.read_bytes()
    path = folder / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "text",
        "truncated",
        "audio_only",
        "too_long",
        "too_short",
        "corrupt",
        "bad_aspect",
        "out_is_a_file",
    ],
)
def test_bad_input_is_one_line_and_exit_2(case: str, sample_video, tmp_path: Path) -> None:
    source, _ = sample_video
    env: dict[str, str] = {}
    extra: list[str] = []
    if case == "missing":
        path = tmp_path / "nope.mp4"
    elif case == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("these are not the frames you are looking for\n" * 50)
    elif case == "truncated":
        path = _truncated(tmp_path, source)
    elif case == "audio_only":
        path = tmp_path / "podcast.m4a"
        write_audio_only(path, 3.0)
    elif case == "too_long":
        path, env = source, {"MAX_VIDEO_SECONDS": "5"}
    elif case == "corrupt":
        path = tmp_path / "shredded.mp4"
        damage_packets(source, path, every=3)
    elif case == "too_short":
        path, extra = source, ["--min", "50", "--max", "60"]  # the sample is 40 s long
    elif case == "bad_aspect":
        path, extra = source, ["--aspect", "4:3"]
    else:
        path = source
        (tmp_path / "taken").write_text("not a folder")
    out = tmp_path / ("taken" if case == "out_is_a_file" else "out")
    result = _run(["clip", str(path), "--out", str(out), *extra], tmp_path, **env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("opusclip: ")
    assert "Traceback" not in result.stderr
    assert case == "out_is_a_file" or not out.exists(), "no output may be left behind for a failed run"
    assert not list(tmp_path.glob(".out.partial-*"))


def _srt_times(text: str) -> list[tuple[float, float]]:
    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))

    return [
        (seconds(a), seconds(b))
        for a, b in (line.split(" --> ") for line in text.splitlines() if " --> " in line)
    ]


def test_captions_line_up_with_the_speech(clipped) -> None:
    """Every caption cue, put back on the source's clock, falls where espeak was actually speaking."""
    _, work, truth = clipped
    report = json.loads((work / "out" / "clips.json").read_text())
    cues = [
        (clip["start"] + a, clip["start"] + b)
        for clip in report["clips"]
        if "srt" in clip["captions"]
        for a, b in _srt_times((work / "out" / clip["captions"]["srt"]).read_text())
    ]
    assert cues, "the sample's speech must give captions"
    spoken = [u.span for u in truth.speech]
    for start, end in cues:
        assert any(s.start - 0.5 <= start and end <= s.end + 0.5 for s in spoken), (start, end, spoken)
