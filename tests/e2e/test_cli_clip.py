"""`opusclip clip` as a user runs it: a real process on generated media, its files, and its errors."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import psutil
import pytest

from adapters.media.synthetic import Truth, damage_packets, write_audio_only
from tests.e2e.clip_runs import new_mark, survivors
from tests.e2e.hostile_media import Audio, Video, write

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


# ---------------------------------------------------------------- what a run may never do


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256, hidden ones included."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
        if not p.is_relative_to(folder / "cache")
    }


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    assert lines[0].startswith("opusclip: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("case", ["input_inside_out", "out_is_the_input", "an_output_is_the_input"])
def test_the_input_is_never_written_over(case: str, sample_video, tmp_path: Path) -> None:
    source, _ = sample_video
    out = tmp_path / "out"
    out.mkdir()
    if case == "input_inside_out":  # `opusclip clip out/clip_01.mp4 --out out`
        path = out / "clip_01.mp4"
        path.write_bytes(source.read_bytes())
    elif case == "out_is_the_input":
        path = out = tmp_path / "video.mp4"
        path.write_bytes(source.read_bytes())
    else:  # the same file under another name: a hard link where a clip would be written
        path = tmp_path / "video.mp4"
        path.write_bytes(source.read_bytes())
        os.link(path, out / "clip_02.mp4")
    before = _tree(tmp_path)
    env = new_mark()
    line = _one_line(_run(["clip", str(path.relative_to(tmp_path)), "--out", str(out)], tmp_path, **env))
    expected = {"input_inside_out": "lies inside --out", "out_is_the_input": "is the input file"}
    assert expected.get(case, "clip_02.mp4 is the input") in line, line
    assert _tree(tmp_path) == before, "nothing may be written"
    assert not survivors(env)


@pytest.mark.parametrize("out", ["/proc/opusclip-test", "/proc", "/sys/opusclip-test", "read-only"])
def test_an_unwritable_out_is_refused_before_any_work(out: str, sample_video, tmp_path: Path) -> None:
    source, _ = sample_video
    if out == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; /proc and /sys stand in for read-only mounts")
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        out = str(locked / "clips")
    before = _tree(tmp_path)
    started = time.monotonic()
    result = _run(["clip", str(source), "--out", out], tmp_path)  # progress on: any work would show
    line = _one_line(result)
    assert "cannot write" in line, line
    assert "analyse" not in result.stderr and time.monotonic() - started < 30
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("case", ["loop", "dangling", "folder"])
def test_an_input_that_is_no_file_says_what_it_is(case: str, tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    if case == "loop":
        path.symlink_to(path.name)
    elif case == "dangling":
        path.symlink_to("gone.mp4")
    else:
        path.mkdir()
    line = _one_line(_run(["clip", str(path), "--out", str(tmp_path / "out")], tmp_path))
    expected = {"loop": "symlink loop", "dangling": "broken symlink", "folder": "a folder"}[case]
    assert expected in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["clip"],
        ["clip", "a.mp4", "--max-clips", "many"],
        ["clip", "a.mp4", "--frobnicate"],
        ["frobnicate"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], tmp_path: Path) -> None:
    line = _one_line(_run(argv, tmp_path))
    assert "--help" in line, line


def test_a_twenty_second_tone_without_speech_is_clipped(tmp_path: Path) -> None:
    """A picture and a 300 Hz sine, no word in it (it once failed the recogniser)."""
    path = write(tmp_path / "tone20.mp4", [Video((640, 360), fps=30, seconds=20)], [Audio(20.0)])
    env = new_mark()
    result = _run(["clip", str(path), "--out", str(tmp_path / "out"), "--no-progress"], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "clips.json").read_text())
    assert report["clips"] and all((tmp_path / "out" / c["file"]).exists() for c in report["clips"])
    assert not survivors(env)


def test_staging_folders_of_runs_killed_outright_are_swept_by_the_next(tmp_path: Path) -> None:
    dead = next(pid for pid in range(4_000_000, 3_000_000, -1) if not psutil.pid_exists(pid))
    stale, running = tmp_path / f".out.partial-{dead}", tmp_path / f".out.partial-{os.getpid()}"
    for folder in (stale, running):
        (folder / "media").mkdir(parents=True)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 100)
    _one_line(_run(["clip", str(notes), "--out", str(tmp_path / "out")], tmp_path))
    assert not stale.exists() and running.exists(), "only a folder whose run is gone is removed"


# ---------------------------------------------------------------- stopped, crashed or killed mid-run


@pytest.fixture
def rendering(clipped, sample_video) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, str]]]:
    """A run caught rendering (analysis and transcript come from the cache `clipped` filled): its process,
    its folder and its environment's mark. It has its own process group, as a terminal's job has."""
    _, work, _ = clipped
    path, _ = sample_video
    folder = work / f"stopped-{time.monotonic_ns()}"
    folder.mkdir()
    mark = new_mark()
    env = {**os.environ, "CACHE_DIR": str(work / "cache"), **mark}
    args = ["clip", str(path), "--out", str(folder / "out"), "--no-progress"]
    args += ["--min", "4", "--max", "6", "--gap", "0", "--max-clips", "6"]
    process = subprocess.Popen(
        [*OPUSCLIP, *args], cwd=folder, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob(".out.partial-*/**/clip_*.mp4")):
            assert process.poll() is None, f"the run ended before rendering: {process.communicate()}"
            assert time.monotonic() < deadline, "no clip was ever rendered"
            time.sleep(0.01)
        yield process, folder, mark
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group outlives its leader: a stuck child
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGTERM, 143, "opusclip: stopped by SIGTERM; no output written"),
        (signal.SIGINT, 130, "opusclip: interrupted; no output written"),  # Ctrl-C: to the whole group
        (signal.SIGHUP, 129, "opusclip: stopped by SIGHUP; no output written"),
    ],
)
def test_a_stop_signal_ends_the_run_in_one_line_leaving_nothing(
    rendering, signum: int, code: int, said: str
) -> None:
    process, folder, mark = rendering
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines() == [said]
    assert list(folder.iterdir()) == [], "the staging folder (with a finished clip) or output was left"
    assert not survivors(mark)


def test_a_crash_of_the_work_is_one_line_and_exit_2(rendering) -> None:
    """Whatever the media libraries do on some file, a crash of the child doing the work is reported."""
    process, folder, mark = rendering
    (work,) = [c for c in psutil.Process(process.pid).children() if "entrypoints.cli" in c.cmdline()]
    work.send_signal(signal.SIGSEGV)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        "opusclip: processing crashed (SIGSEGV) on this file; no output written"
    ]
    assert list(folder.iterdir()) == []
    assert not survivors(mark)


def test_when_the_command_is_killed_outright_its_processes_and_staging_go_too(rendering) -> None:
    process, folder, mark = rendering
    (work,) = [c for c in psutil.Process(process.pid).children() if "entrypoints.cli" in c.cmdline()]
    work.suspend()  # it cannot finish on its own meanwhile: only its parent's death can end it
    process.kill()  # SIGKILL: nothing runs in the command any more
    process.communicate(timeout=30)
    assert not survivors(mark, grace=2.0), "a process of the run outlived it"
    deadline = time.monotonic() + 10
    while list(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(folder.iterdir()) == [], "the staging folder was left"
