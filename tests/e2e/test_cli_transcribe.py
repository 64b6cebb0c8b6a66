"""`opusclip transcribe` as a user runs it: a real process on generated media, each format, and its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.media.synthetic import Scene, Truth, transcode, write_video

OPUSCLIP = [sys.executable, "-m", "entrypoints.cli", "transcribe"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPUSCLIP, *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opusclip: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_txt_goes_to_stdout_one_phrase_a_line(sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    path, _ = sample_video
    result = _run([str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no progress bar when stderr is not a terminal"
    lines = result.stdout.splitlines()
    assert len(lines) >= 2
    assert lines[0].startswith("Welcome back to the show")
    assert "secret" in result.stdout.lower()


def test_json_holds_segments_and_words_in_the_sources_media_time(
    sample_video: tuple[Path, Truth], tmp_path: Path
) -> None:
    source, truth = sample_video
    late = tmp_path / "capture.ts"  # a broadcast capture: its first timestamp is 1000 s
    transcode(source, late, video_codec="libx264", audio_codec="aac", container_format="mpegts",
              size=(160, 90), max_seconds=25.0, start_offset=1000.0)  # fmt: skip
    result = _run([str(late), "--format", "json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"duration", "language", "segments", "words"}
    assert 24.0 <= report["duration"] <= 26.0 and report["language"] == "en"
    words, segments = report["words"], report["segments"]
    assert words and segments
    assert all(set(w) == {"text", "start", "end", "confidence"} for w in words)
    assert all(set(s) == {"text", "start", "end"} for s in segments)
    assert words[0]["text"] == "Welcome"
    spoken = [u.span for u in truth.speech]
    assert abs(words[0]["start"] - spoken[0].start) <= 0.3
    for word in words:
        assert any(s.start - 0.3 <= word["start"] and word["end"] <= s.end + 0.3 for s in spoken), word
    assert " ".join(s["text"] for s in segments) == " ".join(w["text"] for w in words)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_captions_go_to_a_new_file(fmt: str, sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    path, _ = sample_video
    out = tmp_path / f"talk.{fmt}"
    result = _run([str(path), "--format", fmt.upper(), "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text()
    separator = "," if fmt == "srt" else "."
    assert text.startswith("1\n00:00:00" if fmt == "srt" else "WEBVTT")
    assert re.search(rf"00:00:0\d{separator}\d{{3}} --> 00:00:0\d{separator}\d{{3}}\n", text)
    assert "Welcome back" in text


def test_out_never_overwrites_a_file(sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    path, _ = sample_video
    mine = tmp_path / "notes.txt"
    mine.write_text("my own notes")
    _one_error_line(_run([str(path), "--out", str(mine)], tmp_path), "already exists")
    assert mine.read_text() == "my own notes"
    _one_error_line(_run([str(path), "--out", str(tmp_path / "no" / "t.txt")], tmp_path), "no folder")


def test_bad_input_is_one_line_and_exit_2(sample_video: tuple[Path, Truth], tmp_path: Path) -> None:
    path, _ = sample_video
    _one_error_line(_run([str(path), "--format", "docx"], tmp_path), "not one of txt, json, srt, vtt")
    _one_error_line(_run([str(tmp_path / "missing.mp4")], tmp_path), "file not found")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    _one_error_line(_run([str(text)], tmp_path), "not a media file")
    mute = tmp_path / "mute.mp4"
    write_video(mute, [Scene(1.0, (10, 10, 10))], size=(64, 36), fps=5, audio=False)
    _one_error_line(_run([str(mute)], tmp_path), "no audio stream")
